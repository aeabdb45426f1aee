"""No server left behind: process groups, atexit, SIGTERM/SIGHUP, and the kernel's parent-death signal.

Every embedded server runs in its own session (so a terminal's Ctrl-C reaches only us, and we shut
it down in order) and is registered here until stopped. SIGTERM and SIGHUP become SystemExit (like
Ctrl-C becomes KeyboardInterrupt), so `with EmbeddedServer(...)` blocks stop their server while
unwinding, and atexit stops any server still registered at exit; if this process is killed
outright (SIGKILL), Linux sends the server SIGTERM through PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

_PR_SET_PDEATHSIG = 1


class Stoppable(Protocol):
    def stop(self) -> None: ...


_running: list[Stoppable] = []
_lock = threading.Lock()
_atexit_installed = False
_signals_installed = False


def register(server: Stoppable) -> None:
    """Track a started server; installs the exit hook, and the signal hooks once in the main thread."""
    global _atexit_installed
    with _lock:
        _running.append(server)
        if not _atexit_installed:
            atexit.register(stop_all)
            _atexit_installed = True
        _install_signal_handlers()


def unregister(server: Stoppable) -> None:
    with _lock:
        if server in _running:
            _running.remove(server)


def stop_all() -> None:
    """Stop every registered server (newest first); errors are ignored: we are exiting."""
    with _lock:
        servers = list(reversed(_running))
    for server in servers:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _on_signal(signum: int, frame: Any) -> None:
    # Only unwind: context managers stop their servers on the way out, atexit stops the rest.
    # (Stopping here could deadlock: the interrupted frame may hold a Popen's wait lock.)
    raise SystemExit(128 + signum)  # unwinds finally blocks and context managers


def _install_signal_handlers() -> None:
    """Only in the main thread, and only over the default handler (never replace a user's own)."""
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _on_signal)
    _signals_installed = True


def child_setup() -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to SIGTERM the server when this thread dies (Linux only).

    PR_SET_PDEATHSIG fires when the creating *thread* exits, so it is used only from the main
    thread, whose exit is the process's exit.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name, use_errno=True)

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return setup


# ---- process groups (Linux /proc) ---------------------------------------------------------------

_SHM_NAME = re.compile(rb"triton_python_backend_shm_region_[0-9A-Za-z-]+")
_SHM_DIR = Path("/dev/shm")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`: the server and its python-backend stubs."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(proc.name))
    return members


def shm_regions(pgid: int) -> set[str]:
    """Shared-memory regions the group's stubs use (named on their command lines)."""
    regions: set[str] = set()
    for pid in group_members(pgid):
        try:
            regions.update(m.decode() for m in _SHM_NAME.findall(Path(f"/proc/{pid}/cmdline").read_bytes()))
        except OSError:
            continue
    return regions


def kill_group(pgid: int, signum: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def reap_group(pgid: int, regions: Collection[str] = (), *, grace_s: float = 3.0) -> None:
    """Make sure no process of the group survives, then remove shared memory a killed server left."""
    deadline = time.monotonic() + grace_s
    if group_members(pgid):
        kill_group(pgid, signal.SIGTERM)
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_members(pgid):
        kill_group(pgid, signal.SIGKILL)
        time.sleep(0.05)
    for name in regions:
        (_SHM_DIR / name).unlink(missing_ok=True)  # a clean server exit removed it already
