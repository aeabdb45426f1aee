"""`method: auto`: candidates from one histogram, the own-error pick, and the model-output check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from generator.calibrate import auto
from generator.calibrate.calibrators import AmaxSettings, compute_amax
from generator.calibrate.histogram import Histogram
from generator.calibrate.run import calibrate_model
from tests.calibrate.calib_helpers import TINY_TENSORS, calibration


def _hist(x: np.ndarray) -> Histogram:
    hist = Histogram()
    hist.update(np.asarray(x, dtype=np.float32))
    return hist


def _outlier_data(n: int = 8192, seed: int = 0, every: int = 4096) -> np.ndarray:
    """Mostly |N(0, 1)| with a value of 30 in one row of `every`: own MSE wants those clipped."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal((n, 16))).astype(np.float32)
    x[::every, 3] = 30.0
    return x


def test_auto_offers_every_candidate_and_picks_the_lowest_own_error() -> None:
    result = compute_amax(_hist(_outlier_data()), AmaxSettings(method="auto"))
    assert result.candidates is not None
    assert set(result.candidates) == {"entropy", "mse", "percentile_99.9", "percentile_99.99", "percentile_99.999", "minmax"}
    assert result.candidates["minmax"] == 30.0
    chosen = result.method.removeprefix("auto:")
    assert result.amax == result.candidates[chosen]
    mse_only = compute_amax(_hist(_outlier_data()), AmaxSettings(method="mse"))
    assert result.mse <= mse_only.mse * (1 + 1e-9)
    assert result.amax < 30.0  # own error clips the outliers


def _max_model() -> onnx.ModelProto:
    """y = ReduceMax(Relu(x)) per row: the output is exactly the values own MSE prefers to clip."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ReduceMax", ["r"], ["y"], axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_output_error_overrides_own_error_where_clipping_hurts_the_output() -> None:
    x = _outlier_data()
    hist = _hist(x)
    first = {"r": compute_amax(hist, AmaxSettings(method="auto"))}
    refined = auto.refine(_max_model(), first, {"r": hist}, {"x": _outlier_data(64, seed=1, every=8)}, held_out=True)
    assert first["r"].amax < 30.0  # own error alone clips the outliers ...
    assert refined["r"].amax == 30.0  # ... the output check keeps them (minmax, or the percentile equal to it)
    assert refined["r"].method in ("auto:minmax", "auto:percentile_99.999")
    assert "output SQNR" in (refined["r"].reason or "") and "held-out" in (refined["r"].reason or "")


def test_tensors_whose_candidates_agree_need_no_trial() -> None:
    x = np.random.default_rng(2).uniform(0, 1, (4096, 16)).astype(np.float32)  # no tail: all candidates near 1
    hist = _hist(x)
    first = {"r": compute_amax(hist, AmaxSettings(method="auto"))}
    assert len(auto.distinct_candidates(first["r"])) == 1
    assert auto.refine(_max_model(), first, {"r": hist}, {"x": x[:32]}, held_out=True) == first


def test_auto_records_winner_and_reason_in_the_manifest(tmp_path: Path, tiny_model: Path, pixels: Path) -> None:
    result = calibrate_model(tiny_model, calibration(pixels, method="auto"), tmp_path / "cal", variant="v", tensors=TINY_TENSORS, progress=False)
    document = json.loads(result.manifest_path.read_text())
    assert document["method"] == "auto"
    for name in TINY_TENSORS:
        entry = document["tensors"][name]
        assert entry["method"].startswith("auto:") and entry["reason"]
        assert entry["amax"] == entry["candidates"][entry["method"].removeprefix("auto:")]
