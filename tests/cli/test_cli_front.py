"""The command line as a user meets it: help with examples, flags that mean one thing everywhere,
-v anywhere, progress only on a terminal, exit codes, and a front door that runs before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator import cli
from generator.cli import build_parser, main

COMMANDS = ("schema", "check", "calibrate", "quantize", "sensitivity", "build", "verify", "render", "validate",
            "serve", "compare", "bench", "run")
SPEC_COMMANDS = ("check", "calibrate", "quantize", "sensitivity", "build", "verify", "render", "compare", "bench", "run")


def _subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


def test_every_command_help_ends_with_examples_and_takes_no_progress_and_v() -> None:
    parsers = _subparsers()
    assert set(COMMANDS) <= set(parsers)
    for name in COMMANDS:
        text = parsers[name].format_help()
        tail = text.rstrip().split("examples:\n")[-1].splitlines()
        assert "examples:" in text and 1 <= len(tail) <= 3 and all(line.strip().startswith("trgen ") for line in tail), name
        assert "--no-progress" in text and "--verbose" in text, name


def test_model_and_variant_mean_the_same_everywhere() -> None:
    parsers = _subparsers()
    for name in ("calibrate", "quantize", "sensitivity", "build", "verify", "compare", "bench", "run"):
        text = " ".join(parsers[name].format_help().split())
        assert "--model NAME" in text and "a model name of the spec" in text, name
        assert "--variant NAME" in text, name


def test_verbose_before_or_after_the_command(tiny_spec: Path) -> None:
    assert main(["-v", "check", str(tiny_spec)]) == 0
    assert main(["check", str(tiny_spec), "-v"]) == 0


def test_a_variant_name_given_to_model_gets_a_hint(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(tiny_spec), "--model", "tiny_int8"]) == 2
    assert "that is a variant name: use --variant" in capsys.readouterr().err
    assert main(["calibrate", str(tiny_spec), "--variant", "nope"]) == 2
    assert "--variant 'nope': the spec has no such variant (variants: tiny_fp32, tiny_int8)" in capsys.readouterr().err
    assert not (tiny_spec.parent / "build").exists()


def test_check_prints_each_models_inputs_and_outputs(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tiny_spec)]) == 0
    out = capsys.readouterr().out
    assert "model tiny: tiny.onnx (max_batch_size 8)" in out
    assert "  input  input: fp32 [?, 1, 8, 8]" in out and "  output logits: fp32 [?, 4]" in out
    assert "variant tiny_int8: tiny int8 on python-onnxruntime" in out


def test_a_command_module_that_fails_to_import_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, "no_such_cmds"))
    build_parser()
    err = capsys.readouterr().err
    assert "trgen: warning: the no_such_cmds commands are unavailable: ModuleNotFoundError" in err


def test_no_carriage_return_progress_when_not_a_terminal(tiny_spec: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "generator", "calibrate", str(tiny_spec)], capture_output=True,
                         text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "\r" not in out.stdout


def test_version_and_registration_import_nothing_heavy() -> None:
    code = ("import json, sys\nfrom generator.cli import build_parser\nbuild_parser()\n"
            "heavy = ('onnx', 'onnxruntime', 'numpy', 'matplotlib', 'pydantic', 'jinja2', 'grpc', 'yaml', 'tqdm',"
            " 'generator.spec')\nprint(json.dumps([m for m in heavy if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert json.loads(out.stdout) == []


SLOW_DATA = """\
import time
import numpy as np

def batches():
    for _ in range(100):
        time.sleep(0.1)  # a slow data pipeline: the interrupt lands while calibration runs
        yield {"input": np.zeros((8, 1, 8, 8), np.float32)}
"""


def test_interrupted_is_a_runtime_failure_exit_4(tiny_spec: Path) -> None:
    """Ctrl-C during work: exit 4 (a run-time failure, not the input's fault), one line, no traceback."""
    import signal
    import time

    (tiny_spec.parent / "slowdata.py").write_text(SLOW_DATA)
    tiny_spec.write_text(tiny_spec.read_text().replace(
        "samples: 32", "samples: 800").replace(
        "          data: {kind: arrays, path: data.npz}\n", "          data: {kind: callable, callable: 'slowdata:batches'}\n"))
    proc = subprocess.Popen([sys.executable, "-m", "generator", "calibrate", str(tiny_spec), "--trust-code"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    time.sleep(4.0)  # imports and the front door done, calibration under way (10 s of data)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "trgen: interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert not list((tiny_spec.parent / "build").rglob("calibration.cache"))  # nothing half-written
