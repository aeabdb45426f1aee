"""The accuracy budget loop: fewest fallbacks that meet the target, bounded passes, FP16 islands, task metrics."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from generator.quantize import task_metrics
from generator.quantize.budget import Limits, meet_budget
from generator.quantize.evaluate import EvalSet, Evaluator
from generator.quantize.fp16 import fp16_islands
from generator.quantize.placement import activation_tensors
from generator.quantize.runtime import minmax_amax, run, session

BROKEN = ("r2", "r4")  # amax cut 40x: each saturates its tensor


def _evaluator(zoo_model: onnx.ModelProto, zoo_inputs, fallback: str = "fp32") -> Evaluator:  # type: ignore[no-untyped-def]
    amax = minmax_amax(zoo_model, activation_tensors(zoo_model), zoo_inputs)
    for t in BROKEN:
        amax[t] /= 40
    x = np.random.default_rng(3).normal(0, 1, (256, 3, 8, 8)).astype(np.float32)
    return Evaluator(zoo_model, amax, EvalSet({"x": x}, None, batch_size=64), fallback=fallback)


def test_the_loop_keeps_exactly_the_broken_tensors(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    evaluator = _evaluator(zoo_model, zoo_inputs)
    assert evaluator.drop(evaluator.score()) > 5.0  # all INT8 misses a 2-point budget ...
    result = meet_budget(evaluator, 2.0, data="test split", progress=False)
    assert result.met and result.stopped == "met"
    assert sorted(result.keep_float) == sorted(BROKEN)  # ... and the fewest fallbacks that meet it are the two
    assert evaluator.drop(evaluator.score(result.keep_float)) <= 2.0
    assert result.ranked[0] == "r2"  # the worse one first; r4 only shows once r2 is out


def test_a_met_budget_costs_one_pass(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    evaluator = _evaluator(zoo_model, zoo_inputs)
    result = meet_budget(evaluator, 100.0, data="test split", progress=False)
    assert result.met and result.keep_float == () and result.passes == 1


def test_the_loop_stops_at_its_pass_limit(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    evaluator = _evaluator(zoo_model, zoo_inputs)
    result = meet_budget(evaluator, -1.0, data="test split", limits=Limits(max_passes=4), progress=False)
    assert not result.met and result.stopped in ("passes", "exhausted") and result.passes <= 6


def test_fp16_islands_run_in_float16_and_stay_close(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    kept = ["conv2", "gemm0"]
    outputs = {n.name: n.output[0] for n in zoo_model.graph.node}
    half = fp16_islands(zoo_model, [outputs[k] for k in kept])
    onnx.checker.check_model(half)
    casts = [n for n in half.graph.node if n.op_type == "Cast"]
    assert len(casts) == 2 * len(kept)  # one in, one out per island (weights stored as float16)
    x = next(iter(zoo_inputs))
    ref, got = run(session(zoo_model), x)[0], run(session(half), x)[0]
    assert got.dtype == np.float32 and not np.array_equal(ref, got)
    assert np.abs(ref - got).max() <= 2e-2 * np.abs(ref).max()


def test_the_tensorrt_fallback_is_fp16_in_the_graph(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    evaluator = _evaluator(zoo_model, zoo_inputs, fallback="fp16")
    built = evaluator.build(list(BROKEN))
    kinds = {i.data_type for i in built.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in kinds
    assert meet_budget(evaluator, 2.0, data="test split", progress=False).met


def test_exact_match_ctc_decodes_greedily() -> None:
    logits = np.full((2, 6, 4), -5.0, dtype=np.float32)
    for t, c in enumerate([1, 1, 0, 1, 2, 2]):  # -> 1 1 2 (repeat collapsed, blank splits the 1s)
        logits[0, t, c] = 5.0
    for t, c in enumerate([3, 0, 0, 0, 0, 3]):  # -> 3 3
        logits[1, t, c] = 5.0
    labels = np.array([[1, 1, 2, -1], [3, -1, -1, -1]])
    assert task_metrics.ctc_decode(logits) == [(1, 1, 2), (3, 3)]
    assert task_metrics.exact_match_ctc([logits], labels) == 0.5
    assert task_metrics.agreement("exact_match_ctc", [logits], [logits]) == 1.0


def test_detection_hit_counts_matched_boxes() -> None:
    heatmap = np.full((1, 1, 8, 8), -9.0, dtype=np.float32)
    heatmap[0, 0, 2, 3] = 4.0
    boxes = np.zeros((1, 4, 8, 8), dtype=np.float32)
    boxes[0, 2:, 2, 3] = 1.0  # 16 x 16 pixels centred at (12, 8)
    truth = np.array([[[0, 4, 0, 20, 16], [-1, 0, 0, 0, 0]]])
    assert task_metrics.detection_hit([heatmap, boxes], truth) == 1.0
    far = np.array([[[0, 40, 40, 56, 56]]])
    assert task_metrics.detection_hit([heatmap, boxes], far) == 0.0


def test_an_unknown_metric_is_a_clear_error() -> None:
    from generator.errors import GeneratorError

    with pytest.raises(GeneratorError, match="unknown evaluation metric 'bleu'"):
        task_metrics.score("bleu", [np.zeros((1, 2))], None, [np.zeros((1, 2))])


def test_compare_forms_points_at_the_tensor_where_the_forms_part(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    from onnx import numpy_helper

    from generator.quantize.forms import compare_forms, format_gaps
    from generator.quantize.ort_rewrite import Encoding, optimize_for_ort
    from generator.quantize.qdq import quantize_model

    amax = minmax_amax(zoo_model, activation_tensors(zoo_model), zoo_inputs)
    qdq = quantize_model(zoo_model, amax).model
    ort = optimize_for_ort(qdq, encoding=Encoding.EXACT).model
    batch = zoo_inputs[0]
    faithful = compare_forms(zoo_model, qdq, ort, batch)
    # exact encoding: same numerics up to rounding, plus the output pairs the onnxruntime form adds (r1 is
    # quantized there where the Q/DQ form quantizes only its DQ copy): a few dB at most
    assert faithful and max(r.gap for r in faithful) < 6.0
    # break one scale in the onnxruntime form only: that tensor must top the list
    broken = onnx.ModelProto()
    broken.CopyFrom(ort)
    scale_of = {n.input[0]: n.input[1] for n in broken.graph.node if n.op_type == "QuantizeLinear"}
    target = scale_of["r2"]
    for init in broken.graph.initializer:
        if init.name == target:
            init.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(init) / 20).astype(np.float32), init.name))
    rows = compare_forms(zoo_model, qdq, broken, batch)
    assert rows[0].gap > 10.0 and rows[0].sqnr_ort < rows[0].sqnr_qdq
    assert "quantized in" in format_gaps(rows)


def test_quantize_variant_meets_the_spec_budget_and_reuses_the_decision(tmp_path, zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    """End to end through the spec: a tolerance the all-INT8 model misses is met on the calibration data."""
    import json

    from generator.calibrate import CalibrationResult
    from generator.quantize import quantize_variant
    from generator.spec.data import ArraysSource
    from generator.spec.model import ModelSpec, ResolvedVariant, Variant
    from generator.spec.stages import Benchmark, Calibration, Evaluation, Tolerances
    from generator.spec.triton import TritonSettings

    onnx.save(zoo_model, str(tmp_path / "zoo.onnx"))
    x = np.random.default_rng(3).normal(0, 1, (256, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", x=x)
    np.savez(tmp_path / "eval.npz", x=x[::-1].copy(), labels=np.zeros(256, np.int64))
    source = ArraysSource(kind="arrays", path=tmp_path / "cal.npz", inputs={"x": "x"})
    calibration = Calibration(method="entropy", data=source, samples=256, batch_size=64)  # type: ignore[arg-type]
    evaluation = Evaluation(data=ArraysSource(kind="arrays", path=tmp_path / "eval.npz", inputs={"x": "x"}, labels="labels"),
                            tolerances=Tolerances(max_top1_drop=2.0))
    variant = Variant(precision="int8", target="tensorrt", calibration=calibration)
    model = ModelSpec(name="zoo", onnx=tmp_path / "zoo.onnx", max_batch_size=64, evaluation=evaluation,
                      variants=[variant])
    rv = ResolvedVariant(model=model, variant=variant, name="zoo_trt_int8", triton=TritonSettings(), benchmark=Benchmark(),
                         workdir=tmp_path / "work")
    amax = minmax_amax(zoo_model, activation_tensors(zoo_model), zoo_inputs)
    for t in BROKEN:
        amax[t] /= 40
    cal = CalibrationResult(variant=rv.name, method="entropy", amax=amax, cache_path=tmp_path / "c.cache",
                            manifest_path=tmp_path / "m.json", report_dir=tmp_path, skipped=False)
    result = quantize_variant(rv, cal, progress=False)
    report = json.loads((rv.workdir / "budget" / "budget.json").read_text())
    assert report["met"] and sorted(report["keep_float"]) == sorted(BROKEN)
    assert "not the evaluation data" in report["measured_on"] and report["fallback_precision"] == "fp16"
    assert sorted(result.kept_float) == sorted(BROKEN)
    written = onnx.load(str(result.path))
    assert any(n.op_type == "Cast" for n in written.graph.node)  # TensorRT target: kept layers are FP16 in the graph
    stamp = (rv.workdir / "budget" / "budget.json").stat().st_mtime_ns
    assert sorted(quantize_variant(rv, cal, progress=False).kept_float) == sorted(BROKEN)
    assert (rv.workdir / "budget" / "budget.json").stat().st_mtime_ns == stamp  # the stored decision was reused


def test_an_unmet_budget_keeps_the_best_configuration_tried(zoo_model: onnx.ModelProto, zoo_inputs) -> None:  # type: ignore[no-untyped-def]
    evaluator = _evaluator(zoo_model, zoo_inputs)
    result = meet_budget(evaluator, -1.0, data="test split", limits=Limits(max_passes=8), progress=False)
    assert not result.met
    best = min(result.trials, key=lambda t: (t.drop, t.fallbacks))
    assert result.keep_float == best.kept


def test_top1_refuses_an_output_that_is_not_class_scores() -> None:
    """A detector's heatmap scored as top-1 made every INT8 tensor look broken (all kept float): refused instead."""
    from generator.errors import GeneratorError
    from generator.quantize.task_metrics import score

    rng = np.random.default_rng(0)
    heatmap = rng.random((8, 10, 16, 16), dtype=np.float32)
    with pytest.raises(GeneratorError, match=r"class scores \[N, C\], but it is \[8, 10, 16, 16\]: set evaluation.metric"):
        score("top1", [heatmap], None, [heatmap])
    squeezable = rng.random((8, 1, 1, 5), dtype=np.float32)  # [N, 1, 1, C] is still one answer per sample
    assert score("top1", [squeezable], squeezable.argmax(-1).reshape(8), [squeezable]) == 1.0
