"""`trgen run`, the main job, end to end on a tiny spec against the real bundled server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main

QUICK_BENCH = """\
benchmark: {concurrency: [2], batch_size: 4, warmup_s: 0.2, window_s: 0.5, max_windows: 3, stability_pct: 100}
"""


@pytest.mark.server
def test_run_writes_repository_comparison_and_report(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tiny_spec.read_text().replace("models:\n", QUICK_BENCH + "models:\n")
    text = text.replace("      data: {kind: arrays, path: data.npz, labels: labels}\n",
                        "      data: {kind: arrays, path: data.npz, labels: labels}\n"
                        "      tolerances: {max_top1_drop: 100, min_top1_agreement: 0.0}\n")
    tiny_spec.write_text(text)

    assert main(["run", str(tiny_spec)]) == 0
    out = capsys.readouterr().out
    assert "tiny_int8 vs tiny_fp32, concurrency 2: throughput x" in out

    repo = tiny_spec.parent / "repo"
    assert (repo / "tiny_fp32" / "config.pbtxt").is_file() and (repo / "tiny_int8" / "1" / "model.onnx").is_file()
    assert main(["validate", str(repo)]) == 0
    report = json.loads((tiny_spec.parent / "build" / "report" / "report.json").read_text())
    assert {b["variant"] for b in report["bench"]} == {"tiny_fp32", "tiny_int8"}
    assert all(b["failed"] == 0 for b in report["bench"])
    assert report["comparison"]["comparisons"][0]["samples"] == 64
    assert (tiny_spec.parent / "build" / "report" / "report.md").read_text().startswith("# trgen report")


@pytest.mark.server
def test_run_exits_1_when_int8_misses_a_tolerance(tiny_spec: Path) -> None:
    text = tiny_spec.read_text().replace(
        "      data: {kind: arrays, path: data.npz, labels: labels}\n",
        "      data: {kind: arrays, path: data.npz, labels: labels}\n      tolerances: {min_sqnr_db: 1000}\n",
    )
    tiny_spec.write_text(text)
    assert main(["run", str(tiny_spec), "--no-bench"]) == 1
    assert (tiny_spec.parent / "build" / "report" / "report.json").is_file()


def test_bad_spec_exits_2_and_writes_nothing(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_spec.write_text(tiny_spec.read_text().replace("preferred_batch_sizes: [4, 8]", "preferred_batch_sizes: [4, 16]"))
    for command in (["run", str(tiny_spec)], ["render", str(tiny_spec)], ["calibrate", str(tiny_spec)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{tiny_spec}:6:" in err[0] and "above the model's max_batch_size 8" in err[0]
    assert not (tiny_spec.parent / "repo").exists() and not (tiny_spec.parent / "build").exists()


def _run_until_the_load_test(tiny_spec: Path) -> "tuple[subprocess.Popen[str], list[str]]":
    """`trgen run` on a spec with a long, always-passing load test, returned once the load test starts.

    Returns the process and the stderr lines read so far (the caller reads the rest).
    """
    slow_bench = ("benchmark: {concurrency: [1, 2, 4, 8, 16, 32], batch_size: 4, warmup_s: 0.2, window_s: 1.0, "
                  "max_windows: 3, stability_pct: 100}\n")
    text = tiny_spec.read_text().replace("models:\n", slow_bench + "models:\n")
    tiny_spec.write_text(text.replace(
        "      data: {kind: arrays, path: data.npz, labels: labels}\n",
        "      data: {kind: arrays, path: data.npz, labels: labels}\n"
        "      tolerances: {max_top1_drop: 100, min_top1_agreement: 0.0}\n"))
    proc = subprocess.Popen([sys.executable, "-m", "generator", "run", str(tiny_spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "== 7/7 load test" in line:
            break
    return proc, lines


@pytest.mark.server
@pytest.mark.slow
def test_ctrl_c_during_the_load_test_still_writes_the_report(tiny_spec: Path) -> None:
    """Ctrl-C mid-bench: exit 4, and the report holds the comparison and the levels that completed."""
    import signal
    import time

    proc, lines = _run_until_the_load_test(tiny_spec)
    time.sleep(5.0)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err = "".join(lines) + rest
    assert proc.returncode == 4, err
    assert "load test cut short: interrupted (Ctrl-C); partial report with the comparison" in err
    report = json.loads((tiny_spec.parent / "build" / "report" / "report.json").read_text())
    assert report["comparison"]["comparisons"][0]["samples"] == 64
    assert report["bench"] and report["complete"] is False


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc: Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.server
@pytest.mark.slow
def test_a_dead_server_during_the_load_test_still_writes_the_report(tiny_spec: Path) -> None:
    """The server killed mid-bench: exit 4 (not the input's fault) and the partial report is written."""
    import os
    import signal
    import time

    proc, lines = _run_until_the_load_test(tiny_spec)
    time.sleep(4.0)
    for child in _children(proc.pid):  # the bundled tritonserver
        os.kill(child, signal.SIGKILL)
    _, rest = proc.communicate(timeout=180)
    err = "".join(lines) + rest
    assert proc.returncode == 4, err
    assert "trgen: failed: load test cut short:" in err and "partial report with the comparison" in err
    report = json.loads((tiny_spec.parent / "build" / "report" / "report.json").read_text())
    assert report["comparison"]["comparisons"][0]["samples"] == 64 and report["complete"] is False


@pytest.mark.server
@pytest.mark.slow
def test_ctrl_c_during_bench_writes_the_partial_report(tiny_spec: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "bench", str(tiny_spec), "--concurrency", "1,2,4,8,16,32", "--warmup", "0.2",
         "--window", "1", "--max-windows", "3", "--stability", "100", "--out", str(tiny_spec.parent / "b")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    time.sleep(25.0)  # calibrate, render, start the server, a few levels
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the whole sweep finished before the interrupt on this machine")
    assert proc.returncode == 4, out + err
    assert "load test cut short: interrupted (Ctrl-C); partial report" in err
    report = json.loads((tiny_spec.parent / "b" / "report.json").read_text())
    assert report["bench"] and report["complete"] is False
