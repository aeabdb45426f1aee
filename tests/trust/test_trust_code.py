"""Code named in a spec runs only by consent; `check` lists it; a module beside the spec is found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from generator.cli import main

MODULE = """\
import numpy as np
from pathlib import Path

def batches(count=2):
    Path(__file__).with_name("ran.txt").write_text("the spec's code ran")
    for _ in range(count):
        yield {"input": np.zeros((4, 1, 8, 8), np.float32), "labels": np.zeros(4, np.int64)}
"""


@pytest.fixture
def code_spec(tiny_spec: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delitem(sys.modules, "mydata", raising=False)  # each test's own mydata.py, not a cached one
    (tiny_spec.parent / "mydata.py").write_text(MODULE)  # beside the spec, not on sys.path
    tiny_spec.write_text(tiny_spec.read_text().replace(
        "          data: {kind: arrays, path: data.npz}\n",
        "          data: {kind: callable, callable: 'mydata:batches', args: {count: 2}}\n"))
    return tiny_spec


def test_callable_needs_consent_and_nothing_runs_without_it(code_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "calibrate", "render", "run"):
        assert main([command, str(code_spec)]) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{code_spec}:20: models[0].variants[1].calibration.data.callable" in err[0], err
        assert "'mydata:batches' would import and run Python code: pass --trust-code" in err[0]
    assert not (code_spec.parent / "ran.txt").exists()
    assert not (code_spec.parent / "build").exists()


def test_check_lists_the_code_it_would_run_without_running_it(code_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(code_spec), "--trust-code"]) == 0
    out = capsys.readouterr().out
    assert "code this spec imports and runs" in out and "  mydata:batches" in out
    assert not (code_spec.parent / "ran.txt").exists()


@pytest.mark.parametrize("how", ["flag", "spec"])
def test_with_consent_the_module_beside_the_spec_runs(code_spec: Path, how: str) -> None:
    argv = ["calibrate", str(code_spec)]
    if how == "flag":
        argv.append("--trust-code")
    else:
        code_spec.write_text("trust_code: true\n" + code_spec.read_text())
    assert main(argv) == 0
    assert (code_spec.parent / "ran.txt").read_text() == "the spec's code ran"


NAN_MODULE = """\
import numpy as np

def batches(count=1):
    data = np.zeros((4, 1, 8, 8), np.float32)
    data[1, 0, 0, 0] = np.inf
    yield {"input": data}
"""


def test_nan_or_inf_from_a_callable_is_blamed_on_the_data(code_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (code_spec.parent / "mydata.py").write_text(NAN_MODULE)
    assert main(["calibrate", str(code_spec), "--trust-code"]) == 2
    err = capsys.readouterr().err
    assert "data callable mydata:batches: input 'input': the data holds NaN or Inf values: the data is broken" in err
