"""`trgen verify`: each built artifact against onnxruntime FP32, on the evaluation set, before serving.

Same statistics and the same tolerance checks as the live comparison (generator.measure), so a
variant that fails here would fail there too, but without a server: ONNX artifacts run in
onnxruntime (CPU, works everywhere), TensorRT plans on the local GPU.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..errors import GeneratorError
from .comparison import Check, PairComparison
from .pair_stats import PairStats
from ..spec import ResolvedVariant
from ..engine.runner import EngineRunner, OnnxRunner


def verify_variant(rv: ResolvedVariant, artifact: Artifact, *, trt: Any = None) -> PairComparison:
    """Run `artifact` and the spec's FP32 ONNX (onnxruntime) on the evaluation data; judge by its tolerances.

    `trt`: the tensorrt module for plan artifacts (default: the installed one).
    """
    from ..data import evaluation_batches

    evaluation = rv.model.evaluation
    if evaluation is None:
        raise GeneratorError(
            f"model {rv.model.name!r} has no 'evaluation' block: add one (data and tolerances) to verify {rv.name}"
        )
    reference = OnnxRunner(rv.model.onnx)
    if artifact.kind == "onnx":
        candidate: OnnxRunner | EngineRunner = OnnxRunner(artifact.model_file)
    else:
        from ..engine.tensorrt_env import load_tensorrt

        version_compatible = rv.build.version_compatible
        candidate = EngineRunner(
            trt or load_tensorrt(), artifact.model_file, artifact.signature, version_compatible=version_compatible
        )
    if sorted(candidate.outputs) != sorted(reference.outputs):
        raise GeneratorError(f"{rv.name} has outputs {candidate.outputs} but the FP32 model has {reference.outputs}")

    stats = PairStats(reference.outputs)
    for batch in evaluation_batches(rv.model):
        candidate_out = {name: np.asarray(value, dtype=np.float32) for name, value in candidate(batch.inputs).items()}
        stats.update(reference(batch.inputs), candidate_out, batch.labels)
    result = stats.judge(
        model=rv.model.name, target=rv.target, reference=f"{rv.model.name} fp32 (onnxruntime)", candidate=rv.name,
        tolerances=evaluation.tolerances, metrics=evaluation.metrics,
    )
    layer_check = int8_layer_check(rv, artifact)
    return result if layer_check is None else replace(result, checks=result.checks + (layer_check,))


def int8_layer_check(rv: ResolvedVariant, artifact: Artifact) -> Check | None:
    """int8 TensorRT plans: the layers meant to run INT8 did, as the engine inspector reported at build time.

    Accurate outputs do not prove INT8 ran: TensorRT falls back to FP16/FP32 per layer with only a warning.
    """
    if artifact.kind != "plan" or rv.precision != "int8":
        return None
    from ..engine.layers import layers_path, read_layer_report

    report = read_layer_report(artifact.model_file)
    if report is None:
        detail = f"no layer report {layers_path(artifact.model_file)}: rebuild with `trgen build --force`"
        return Check("int8_layers", float("nan"), 0.0, False, detail)
    problems = report.problems()
    expected = len(report.expected_int8)
    detail = f"{expected - len(problems) - len(report.unverified)} of {expected} layers meant to run INT8 do"
    detail += "".join(f"; {note}" for note in report.notes())
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        detail += f"; not: {'; '.join(problems[:5])}{more} (see {layers_path(artifact.model_file).name})"
    return Check("int8_layers", float(len(problems)), 0.0, not problems, detail)
