"""The committed model zoo (benchmarks/zoo, README there): every model loads in onnxruntime, its spec
passes `trgen check`, its npz keys match its inputs, and its FP32 metric on the evaluation data is the
one the zoo README states (within 0.01). No training; a few seconds in all."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "benchmarks" / "zoo" / "README.md"


def _zoo():
    spec = importlib.util.spec_from_file_location("zoo_benchmark", ROOT / "benchmarks" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo = _zoo()


def readme_metrics() -> dict[str, float]:
    """`| `name` | ... |` rows of the README's model table -> the value of its 'FP32 metric' column."""
    lines = [line for line in README.read_text().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    column = header.index("FP32 metric")
    out = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0])
        if match and match.group(1) in zoo.MODELS:
            out[match.group(1)] = float(re.search(r"\d+\.\d+", cells[column]).group(0))
    return out


def test_readme_lists_every_model() -> None:
    assert sorted(readme_metrics()) == sorted(zoo.MODELS)


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_zoo_model(name: str) -> None:
    import onnxruntime as ort

    folder, metric_name = zoo.MODELS[name]
    spec_path = folder / "spec.yaml"
    check = subprocess.run([sys.executable, "-m", "generator", "check", str(spec_path)],
                           capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout + check.stderr

    spec = zoo.load_spec_dict(folder)
    model = spec["models"][0]
    session = ort.InferenceSession(str(folder / model["onnx"]), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    assert session.get_inputs()[0].shape[0] == "batch"

    evaluation = np.load(folder / model["evaluation"]["data"]["path"])
    assert set(evaluation.files) == inputs | {"labels"}
    int8 = next(v for v in model["variants"] if v["precision"] == "int8")
    calibration = np.load(folder / int8["calibration"]["data"]["path"])
    assert set(calibration.files) == inputs
    for source in (model["evaluation"]["data"], int8["calibration"]["data"]):
        assert set((source.get("inputs") or {}).values()) <= set(evaluation.files)

    feeds, labels = zoo.evaluation_data(folder, spec, None)
    value = zoo_metric(metric_name, zoo.run_all(folder / model["onnx"], feeds), labels)
    assert value == pytest.approx(readme_metrics()[name], abs=0.01)


def zoo_metric(name: str, outputs: list[np.ndarray], labels: np.ndarray) -> float:
    return zoo.zoo_metrics.METRICS[name](outputs, labels)
