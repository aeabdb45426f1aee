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
from ..measure.agreement import ErrorAccumulator, TopKCounter, class_scores
from ..measure.compare import PairComparison
from ..measure.compare import _judge as judge  # shared with the live comparison (see report to the lead)
from ..signature import read_onnx_signature
from ..spec import ResolvedVariant
from .runner import EngineRunner, OnnxRunner


def verify_variant(rv: ResolvedVariant, artifact: Artifact, *, trt: Any = None) -> PairComparison:
    """Run `artifact` and the spec's FP32 ONNX (onnxruntime) on the evaluation data; judge by its tolerances.

    `trt`: the tensorrt module for plan artifacts (default: the installed one).
    """
    from ..calibrate.data import load_batches

    evaluation = rv.model.evaluation
    if evaluation is None:
        raise GeneratorError(
            f"model {rv.model.name!r} has no 'evaluation' block: add one (data and tolerances) to verify {rv.name}"
        )
    reference = OnnxRunner(rv.model.onnx)
    if artifact.kind == "onnx":
        candidate: OnnxRunner | EngineRunner = OnnxRunner(artifact.model_file)
    else:
        from .tensorrt_env import load_tensorrt

        version_compatible = rv.variant.build is not None and rv.variant.build.version_compatible
        candidate = EngineRunner(
            trt or load_tensorrt(), artifact.model_file, artifact.signature, version_compatible=version_compatible
        )
    if sorted(candidate.outputs) != sorted(reference.outputs):
        raise GeneratorError(f"{rv.name} has outputs {candidate.outputs} but the FP32 model has {reference.outputs}")

    errors = {name: ErrorAccumulator(name) for name in reference.outputs}
    topk = TopKCounter()
    classifier: str | None = None
    signature = read_onnx_signature(rv.model.onnx)
    batches = load_batches(evaluation.data, signature, batch_size=evaluation.batch_size, limit=evaluation.samples)
    for index, batch in enumerate(batches):
        ref_out, cand_out = reference(batch.inputs), candidate(batch.inputs)
        for name in reference.outputs:
            errors[name].update(ref_out[name], np.asarray(cand_out[name], dtype=np.float32))
        if index == 0:
            classifier = next((name for name in reference.outputs if class_scores(ref_out[name]) is not None), None)
        if classifier is not None:
            ref_scores, cand_scores = class_scores(ref_out[classifier]), class_scores(cand_out[classifier])
            assert ref_scores is not None and cand_scores is not None
            topk.update(ref_scores, cand_scores, batch.labels)
    return judge(
        rv.model.name, rv.target, f"{rv.model.name} fp32 (onnxruntime)", rv.name, errors, topk, classifier,
        evaluation.tolerances, evaluation.metrics,
    )
