"""Atomic writes and content hashes, shared by every stage.

No stage leaves a half-written model, engine, manifest, report or repository behind: single files
are written to a temporary file beside the target and renamed over it; folders are built whole in a
temporary folder beside the target and swapped in with one atomic exchange. Temporary names carry
the writer's pid, so leftovers of killed runs are recognised and swept on the next start.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; models and plans are read by Triton, often as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Indented JSON with a trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed: ONNX models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MARKER_TEXT = "Written by trgen: this folder is replaced whole on the next run. Do not keep your own files here.\n"


@contextmanager
def staged_dir(target: Path, *, marker: str | None = None) -> Iterator[Path]:
    """Yield an empty folder beside `target`; on success it replaces `target` whole, on error it is removed.

    The swap is one `renameat2(RENAME_EXCHANGE)` where Linux has it, so at every moment `target` is
    the complete old folder or the complete new one. Elsewhere the old folder is renamed aside first;
    a kill between the two renames leaves it as `.NAME.*.old`, which the next start puts back.
    `marker` names a file written inside the new folder: the proof that trgen owns it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(target.parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent))
    try:
        yield staging
        if marker is not None:
            (staging / marker).write_text(MARKER_TEXT)
        staging.chmod(0o755)  # mkdtemp makes 0700; outputs are for people, Triton and other tools
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _temp_prefix(name: str) -> str:
    """`.NAME.PID-`: a leftover names the process that made it, so only dead processes' are swept."""
    return f".{name}.{os.getpid()}-"


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.(?P<kind>tmp|old)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers(folder: Path, name: str | None = None, *, recursive: bool = False) -> list[Path]:
    """Remove temporary files and folders that killed trgen runs left in `folder` (of `name`, or all).

    Only names trgen makes (`.NAME.PID-XXXX.tmp`, `.NAME.XXXX.old`) whose process is gone are touched.
    A `.old` whose target is missing is the previous folder of an interrupted swap: it is put back.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            if recursive and entry.is_dir() and not entry.is_symlink():
                removed += sweep_leftovers(entry, recursive=True)
            continue
        pid = match["pid"]
        if pid is not None and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another trgen is writing it right now
        if pid is not None and int(pid) == os.getpid():
            continue  # ours, in use
        original = folder / match["name"]
        if match["kind"] == "old" and not original.exists() and not original.is_symlink():
            os.replace(entry, original)  # the swap was cut between its two renames: the old folder returns
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's renameat2(RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # old kernel or a file system without exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def _swap(new: Path, target: Path) -> None:
    if not target.exists() and not target.is_symlink():
        os.replace(new, target)
        return
    if target.is_dir() and not target.is_symlink() and _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old folder
        return
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_owned(target: Path, *, marker: str, owned: Callable[[Path], bool], what: str, flag: str) -> None:
    """Refuse to replace `target` unless trgen owns it: missing, empty, or holding only what trgen writes.

    `owned(entry)` says whether one entry is something trgen writes; the marker file always is.
    Raises `GeneratorError` naming the first entries that are not, so nothing of the user's is lost.
    """
    from .errors import GeneratorError

    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise GeneratorError(f"exists and is not a folder trgen wrote: choose another {flag}", where=target)
    foreign = sorted(p.name for p in target.iterdir() if p.name != marker and not owned(p))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise GeneratorError(
            f"holds {shown}, which trgen did not write: trgen replaces {what} whole, so choose another {flag} "
            "(or move those out)",
            where=target,
        )
