"""`trgen verify`: each built artifact against onnxruntime FP32, on the evaluation set, before serving.

Same statistics and the same tolerance checks as the live comparison (generator.measure), so a
variant that fails here would fail there too, but without a server: ONNX artifacts run in
onnxruntime (CPU, works everywhere), TensorRT plans on the local GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..errors import GeneratorError
from .comparison import PairComparison
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
    return stats.judge(
        model=rv.model.name, target=rv.target, reference=f"{rv.model.name} fp32 (onnxruntime)", candidate=rv.name,
        tolerances=evaluation.tolerances, metrics=evaluation.metrics,
    )
