"""`trgen quantize` and `trgen sensitivity` on the tiny spec, including keep_float_top_k and target_drop."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from generator.cli import main
from generator.quantize.rules import tensorrt_problems

pytest.importorskip("generator.calibrate.run", reason="the calibrate package is not available")


def test_quantize_writes_the_qdq_model(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quantize", str(tiny_spec)]) == 0
    path = tiny_spec.parent / "build" / "tiny_int8" / "model_int8_qdq.onnx"
    assert f"tiny_int8: {path} (2 tensors INT8)" in capsys.readouterr().out
    assert tensorrt_problems(onnx.load(str(path))) == []


def test_sensitivity_prints_table_and_writes_json_and_png(tiny_spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    assert main(["sensitivity", str(tiny_spec), "--model", "tiny", "--mode", "oat", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["mode"] == "oat" and data["metric"] == "top1" and data["samples"] == 64
    assert sorted(e["tensor"] for e in data["entries"]) == ["flat", "input"]
    assert all(e["tensor"] in printed for e in data["entries"])
    assert (tiny_spec.parent / "build" / "tiny_int8" / "sensitivity" / "sensitivity_oat.png").stat().st_size > 0


def test_top_k_and_target_drop_keep_tensors_float(tiny_spec: Path) -> None:
    text = tiny_spec.read_text().replace("          samples: 32\n", "          samples: 32\n          keep_float_top_k: 1\n          target_drop: 0\n")
    tiny_spec.write_text(text)
    assert main(["quantize", str(tiny_spec)]) == 0
    workdir = tiny_spec.parent / "build" / "tiny_int8"
    report = json.loads((workdir / "sensitivity" / "sensitivity_loo.json").read_text())
    top, fallback = report["entries"][0]["tensor"], report["fallback"]
    steps = fallback["steps"]
    # the top-1 tensor starts in float; each later step adds the next tensor until the drop is <= 0
    assert fallback["keep_float"] == [top] + [s["kept"] for s in steps[1:]]
    assert steps[0]["kept"] is None and all(s["drop"] > 0 for s in steps[:-1])
    assert fallback["met"] == (steps[-1]["drop"] <= 0)
    qdq = onnx.load(str(workdir / "model_int8_qdq.onnx"))
    quantized = {n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized == {"input", "flat"} - set(fallback["keep_float"])
    assert report["keep_float"] == fallback["keep_float"]

    # unchanged model, data, amax and settings: the stored decision is reused, not re-measured
    stamp = (workdir / "sensitivity" / "sensitivity_loo.json").stat().st_mtime_ns
    model_bytes = (workdir / "model_int8_qdq.onnx").read_bytes()
    assert main(["quantize", str(tiny_spec)]) == 0
    assert (workdir / "sensitivity" / "sensitivity_loo.json").stat().st_mtime_ns == stamp
    assert (workdir / "model_int8_qdq.onnx").read_bytes() == model_bytes
    tiny_spec.write_text(tiny_spec.read_text().replace("target_drop: 0\n", "target_drop: 0.5\n"))
    assert main(["quantize", str(tiny_spec)]) == 0
    assert (workdir / "sensitivity" / "sensitivity_loo.json").stat().st_mtime_ns != stamp


def test_unknown_keep_float_is_a_one_line_user_error(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_spec.write_text(tiny_spec.read_text().replace("          samples: 32\n", "          samples: 32\n          keep_float: [convv]\n"))
    assert main(["quantize", str(tiny_spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keep_float: 'convv'" in err[0]  # checked before calibration starts
    assert not (tiny_spec.parent / "build").exists()


def test_no_int8_variant(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sensitivity", str(tiny_spec), "--variant", "tiny_fp32"]) == 2  # an fp32 variant
    assert "has no int8 variant" in capsys.readouterr().err
    assert main(["sensitivity", str(tiny_spec), "--model", "other"]) == 2
    assert "--model 'other': the spec has no such model" in capsys.readouterr().err


def test_without_evaluation_block_sensitivity_uses_agreement(tiny_spec: Path, tmp_path: Path) -> None:
    text = tiny_spec.read_text()
    tiny_spec.write_text(text.replace("    evaluation:\n      data: {kind: arrays, path: data.npz, labels: labels}\n", ""))
    out = tmp_path / "s.json"
    assert main(["sensitivity", str(tiny_spec), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["metric"] == "agreement" and data["fp32"]["metric"] == 100.0 and data["samples"] == 32
