"""Property: whatever a user writes in a spec, `trgen check` answers 0 or a one-line error (exit 2).

Hypothesis mutates a valid spec (replace a value with anything, drop a key, add a key, corrupt the
text) and runs the real CLI entry point; a traceback or an internal error (exit 3) fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import main
from tests.conftest import TINY_SPEC, make_tiny_cnn

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["../x", "/etc/passwd", "a/b", "..", "fp16", "int8", "tensorrt", "KIND_GPU"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


def _mutate(doc: dict, path: tuple, action: str, value: Any) -> dict:
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent[last], dict):
        parent[last]["extra_" + str(abs(hash(str(value))) % 97)] = value
    return doc


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    folder = tmp_path_factory.mktemp("fuzz")
    make_tiny_cnn(folder / "tiny.onnx")
    np.savez(folder / "data.npz", input=np.zeros((4, 1, 8, 8), np.float32), labels=np.zeros(4, np.int64))
    return folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), action=st.sampled_from(["replace", "delete", "add"]), value=values)
def test_structural_mutations_never_escape(workspace: Path, data: st.DataObject, action: str, value: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(TINY_SPEC)
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _mutate(doc, path, action, value)
    spec = workspace / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc) if isinstance(doc, (dict, list)) else repr(doc))
    _assert_clean_exit(spec, capsys)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, len(TINY_SPEC)), junk=st.text(min_size=1, max_size=6))
def test_text_corruption_never_escapes(workspace: Path, position: int, junk: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    spec = workspace / "spec.yaml"
    spec.write_text(TINY_SPEC[:position] + junk + TINY_SPEC[position:], encoding="utf-8", errors="surrogatepass")
    _assert_clean_exit(spec, capsys)


def _assert_clean_exit(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(spec)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:  # one line per problem, every one of them
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("trgen: error: ") for line in lines), err
        assert "Traceback" not in err
