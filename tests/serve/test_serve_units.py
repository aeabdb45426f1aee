"""Parts of the serve stage that need no server: URLs, ports, log reading, the model template."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from tests.serve.serve_helpers import TEMPLATE, model_source

from generator.errors import GeneratorError, RuntimeFailure
from generator.serve import logscan
from generator.serve.handle import parse_url
from generator.serve.ports import pick_ports, port_is_free


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("gpu-host:8001", (None, "gpu-host:8001")),
        ("grpc://10.0.0.5:9001/", (None, "10.0.0.5:9001")),
        ("http://gpu-host:8000", ("http://gpu-host:8000", None)),
        ("http://h:8000, h:8001", ("http://h:8000", "h:8001")),
    ],
)
def test_parse_url(url: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["gpu-host", "http://h:port", "https://h:8000", "", "h:70000"])
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(GeneratorError):
        parse_url(url)


def test_pick_ports_are_free_and_distinct() -> None:
    ports = pick_ports((0, 0, 0))
    assert len(set(ports)) == 3 and all(port_is_free(p) for p in ports)


def test_pick_ports_refuses_a_busy_fixed_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(GeneratorError, match=f"port {port} .*already in use"):
            pick_ports((port, 0, 0))
        with pytest.raises(GeneratorError, match="must differ"):
            pick_ports((5000, 5000, 0))


def test_first_line_strips_status_prefixes_and_traceback() -> None:
    reason = "Internal: TritonModelException: bad thing happened\n\nAt:\n  /x/model.py(69): initialize\n"
    assert logscan.first_line(reason) == "bad thing happened"


def test_template_has_no_jinja_syntax() -> None:
    """The render stage renders the template with jinja2: it must come out as the very same Python."""
    text = TEMPLATE.read_text()
    assert model_source() == text
    compile(text, "model.py", "exec")


def test_log_without_file_is_empty(tmp_path: Path) -> None:
    assert logscan.read_log(None) == "" and logscan.read_log(tmp_path / "missing.log") == ""


def test_external_url_without_a_server_is_a_clean_error() -> None:
    from generator.serve import ServerHandle

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(RuntimeFailure, match=f"no Triton server answers at 127.0.0.1:{port}"):  # exit 4, not 2
        ServerHandle.external(f"127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(GeneratorError, match=r"gRPC port assumed to be the HTTP port \+ 1"):
        ServerHandle.external(f"http://127.0.0.1:{port - 1}", timeout_s=2)


def test_stub_goes_to_a_private_backends_copy_when_site_packages_is_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filecmp
    import os
    import shutil

    from generator.serve import install

    root = install._server_root()
    backends = tmp_path / "site" / "backends"
    shutil.copytree(root / "backends", backends, ignore=shutil.ignore_patterns(install.STUB, "__pycache__"))
    stub = root / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}" / install.STUB
    real_access = os.access
    monkeypatch.setattr(install.os, "access", lambda p, m: False if m == os.W_OK and str(p).startswith(str(backends)) else real_access(p, m))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    private = install._place_stub(backends, stub)
    assert private.is_relative_to(tmp_path / "cache") and not (backends / "python" / install.STUB).exists()
    assert filecmp.cmp(private / "python" / install.STUB, stub, shallow=False)
    assert (private / "python" / "libtriton_python.so").is_file()
    assert install._place_stub(backends, stub) == private  # reused, not copied again
