"""Find the `tritonserver` bundled in the nvidia-pytriton wheel and make it runnable from this Python.

The wheel ships the binary, its libraries and one python-backend stub per Python minor version; the
stub matching the running interpreter must sit in `backends/python/`, and the first `python3` on PATH
must be ours (the stub takes its site-packages from it). We copy the stub in place when the wheel's
folder is writable, else into a private copy of the backends folder under the user's cache dir.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import GeneratorError

STUB = "triton_python_backend_stub"
_INSTALL_HINT = "install it with: pip install 'nvidia-pytriton>=0.7'"


@dataclass(frozen=True)
class TritonInstall:
    """Paths of a runnable bundled Triton: binary, backends folder (stub in place), libraries."""

    binary: Path
    backends: Path
    libs: Path
    caches: Path | None

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The server's environment: our interpreter first on PATH, bundled libs and libpython found."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")]).rstrip(os.pathsep)
        lib_dirs = [str(self.libs)]
        libpython_dir = sysconfig.get_config_var("LIBDIR")
        if libpython_dir:
            lib_dirs.append(str(libpython_dir))
        if env.get("LD_LIBRARY_PATH"):
            lib_dirs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(lib_dirs)
        return env


def _server_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise GeneratorError(f"the nvidia-pytriton package (it ships tritonserver) is not installed; {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def _check_numpy() -> None:
    """numpy 2 in the server's environment makes every python-backend output come back empty."""
    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        raise GeneratorError(
            f"numpy {numpy.__version__} is installed; the bundled Triton python backend needs numpy < 2 "
            "(outputs come back empty otherwise): pip install 'numpy<2'"
        )


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trgen"


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy a file so that concurrent starts never see a half-written stub."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _place_stub(backends: Path, stub: Path) -> Path:
    """Return a backends folder whose python/ holds `stub`: in place if writable, else a private copy."""
    python_dir = backends / "python"
    target = python_dir / STUB
    if target.is_file() and filecmp.cmp(target, stub, shallow=False):
        return backends
    if os.access(python_dir, os.W_OK):
        _copy_atomic(stub, target)
        return backends
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(str(backends).encode()).hexdigest()[:12]
    private = _cache_dir() / f"triton-backends-py{version}-{digest}"
    if (private / "python" / STUB).is_file() and filecmp.cmp(private / "python" / STUB, stub, shallow=False):
        return private
    private.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backends-", dir=private.parent))
    try:
        shutil.copytree(backends, staging / "b", ignore=shutil.ignore_patterns("__pycache__", STUB))
        shutil.copy2(stub, staging / "b" / "python" / STUB)
        if private.exists():
            shutil.rmtree(private, ignore_errors=True)
        os.replace(staging / "b", private)
    except OSError as exc:
        raise GeneratorError(f"cannot prepare a private Triton backends folder in {private.parent}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return private


def locate_triton() -> TritonInstall:
    """The bundled tritonserver, ready to run with this interpreter (stub placed, numpy checked)."""
    _check_numpy()
    root = _server_root()
    binary = root / "bin" / "tritonserver"
    if not binary.is_file():
        raise GeneratorError(f"tritonserver binary not found at {binary}; reinstall nvidia-pytriton ({_INSTALL_HINT})")
    if not os.access(binary, os.X_OK):
        raise GeneratorError(f"{binary} is not executable; reinstall nvidia-pytriton ({_INSTALL_HINT})")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stubs = root / "python_backend_stubs"
    stub = stubs / version / STUB
    if not stub.is_file():
        have = ", ".join(sorted(p.name for p in stubs.iterdir() if (p / STUB).is_file())) if stubs.is_dir() else "none"
        raise GeneratorError(f"the bundled Triton has no python-backend stub for Python {version} (it has: {have}); use one of those Python versions")
    python3 = Path(sys.prefix) / "bin" / "python3"
    if not python3.exists():
        raise GeneratorError(f"{python3} is missing: the Triton python-backend stub starts the first python3 on PATH; run trgen from a virtualenv")
    libs = root.parent.parent / "nvidia_pytriton.libs"
    caches = root / "caches"
    backends = _place_stub(root / "backends", stub)
    return TritonInstall(binary=binary, backends=backends, libs=libs, caches=caches if caches.is_dir() else None)
