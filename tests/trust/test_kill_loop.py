"""kill -9 at random points of render and calibrate (and run): the previous repository is intact after
every kill, and the next run leaves no leftovers.

Each attempt forks the test process (everything already imported, so a kill lands in real work, not
in start-up) and SIGKILLs the child after a random delay over the command's whole duration.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from generator.cli import main
from generator.validation import validate_repository

_LEFTOVER = re.compile(r"^\..+\.(tmp|old)$")


def _tree(root: Path) -> dict[str, bytes]:
    """Every file trgen wrote (the python backend's __pycache__ is Triton's, not ours)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if _LEFTOVER.match(p.name))


def _killed(argv: list[str], delay_s: float) -> int | None:
    """Run `trgen argv` in a forked child and SIGKILL it after `delay_s`; its exit code if it finished first."""
    pid = os.fork()
    if pid == 0:  # the child: the real CLI, output discarded
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        code = 3
        try:
            code = main(argv)
        finally:
            os._exit(code)
    deadline = time.monotonic() + delay_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _loop(spec: Path, commands: list[list[str]], attempts: int, max_delay_s: float, seed: int) -> None:
    repo = spec.parent / "repo"
    assert main(["render", str(spec)]) == 0
    reference = _tree(repo)
    rng = random.Random(seed)
    finished = 0
    for attempt in range(attempts):
        argv = rng.choice(commands)
        code = _killed(argv, rng.uniform(0.0, max_delay_s))
        finished += code is not None
        assert code in (None, 0, 1), (attempt, argv, code)
        assert repo.is_dir(), f"attempt {attempt} ({argv[0]}): the repository is gone"
        assert _tree(repo) == reference, f"attempt {attempt} ({argv[0]}): the repository changed"
        assert not [p for p in validate_repository(repo) if p.is_error]
    assert finished < attempts, "every attempt finished before its kill: the delays are too long to test anything"
    assert main(["render", str(spec)]) == 0  # the next run: sweeps what the kills left
    assert _tree(repo) == reference
    assert _leftovers(spec.parent) == []


def test_kill_9_during_render_and_calibrate(tiny_spec: Path) -> None:
    spec = str(tiny_spec)
    commands = [["render", spec, "--no-progress"], ["calibrate", spec, "--force", "--no-progress"],
                ["build", spec, "--force", "--no-progress"]]
    start = time.monotonic()
    assert main(["calibrate", spec, "--force"]) == 0
    duration = time.monotonic() - start  # a forced calibration: the longest of the three
    _loop(tiny_spec, commands, attempts=50, max_delay_s=min(max(duration * 1.2, 0.3), 1.5), seed=9)


@pytest.mark.server
@pytest.mark.slow
def test_kill_9_during_run(tiny_spec: Path) -> None:
    """`run` (renders, starts the bundled server, compares): killed anywhere, the server goes with it."""
    spec = str(tiny_spec)
    text = tiny_spec.read_text().replace(
        "      data: {kind: arrays, path: data.npz, labels: labels}\n",
        "      data: {kind: arrays, path: data.npz, labels: labels}\n"
        "      tolerances: {max_top1_drop: 100, min_top1_agreement: 0.0}\n")
    tiny_spec.write_text(text)
    _loop(tiny_spec, [["run", spec, "--no-bench", "--force", "--no-progress"]], attempts=12, max_delay_s=6.0, seed=11)
