"""Stage 2: FP32 ONNX + calibrated amax -> TensorRT-compatible Q/DQ INT8 ONNX.

`placement` says where the Q/DQ pairs go (what calibration must observe), `qdq` writes the model,
`sensitivity` ranks tensors by their effect on accuracy for mixed-precision fallback.
Heavy imports (onnx, onnxruntime, matplotlib) happen inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GeneratorError
from ..fileio import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import onnx

    from ..calibrate import CalibrationResult
    from ..spec import Calibration, ResolvedVariant
    from .evaluate import EvalSet
    from .sensitivity import Fallback, Mode, Ranking

log = logging.getLogger("trgen.quantize")

QDQ_FILENAME = "model_int8_qdq.onnx"
SENSITIVITY_REVISION = 1  # bump when ranking or fallback rules change, so stored decisions are redone


@dataclass(frozen=True)
class QuantizedModel:
    """The written Q/DQ model; `quantized` / `kept_float` are placed activation tensors.

    `amax` (every calibrated tensor, placed or not) and `calibration_cache` travel on to the engine
    stage: the onnxruntime form needs a few more scales than the Q/DQ model carries, and TensorRT's
    implicit INT8 path reads the cache.
    """

    path: Path
    quantized: tuple[str, ...]
    kept_float: tuple[str, ...]
    float_nodes: tuple[str, ...] = ()
    amax: Mapping[str, float] = field(default_factory=dict)
    calibration_cache: Path | None = None


def calibration_tensors(rv: "ResolvedVariant", model: "onnx.ModelProto | None" = None) -> list[str]:
    """The tensors the calibrate stage must observe for this variant.

    Those are the Q/DQ placement's tensors and, for a variant that serves an onnxruntime INT8 model
    (onnxruntime targets unless build.ort_int8 is off), the Conv outputs no Q/DQ scale reaches, so
    that onnxruntime can run those Convs in integer kernels too (`build.ort_int8`). TensorRT's
    implicit INT8 path (build.int8_mode: implicit) needs a scale for every tensor an INT8 layer
    reads or writes, so it gets every float activation of the graph.
    """
    from .ort_form import ort_calibration_tensors
    from .placement import activation_tensors

    model = model if model is not None else _load(rv.model.onnx)
    if rv.target == "tensorrt" and rv.build.int8_mode == "implicit":
        from ..calibrate.run import float_activations

        return float_activations(model)
    return list(dict.fromkeys(activation_tensors(model) + ort_calibration_tensors(rv, model)))


@dataclass(frozen=True)
class SensitivityResult:
    """The ranking, the target_drop fallback (if the spec sets one) and what to keep in float."""

    ranking: "Ranking"
    fallback: "Fallback | None"
    keep_float: tuple[str, ...]  # spec keep_float + top-k + fallback, in that order
    json_path: Path
    plot_path: Path


def quantize_variant(rv: "ResolvedVariant", calibration: "CalibrationResult", *, progress: bool = True) -> QuantizedModel:
    """Write rv.workdir / model_int8_qdq.onnx from the variant's FP32 model and calibrated amax.

    keep_float names are kept in float; keep_float_top_k first measures sensitivity (leave-one-out)
    on the evaluation data and adds the most sensitive tensors. Otherwise, with an accuracy budget
    (calibration.target_drop or evaluation.tolerances.max_top1_drop), the fewest most sensitive
    tensors fall back until the drop on held-out calibration data fits (budget_stage.py); for
    TensorRT targets the kept compute layers are FP16 in the graph (fp16.py).
    """
    from .qdq import quantize_model

    settings = _calibration_settings(rv)
    model = _load(calibration.model_path or rv.model.onnx)  # the graph calibrated (prepared: issue 12)
    keep: Sequence[str] = settings.keep_float
    if settings.keep_float_top_k:  # explicit: the k most sensitive on the evaluation data (and target_drop there)
        stored = _stored_decision(rv, calibration)
        keep = stored if stored is not None else sensitivity_variant(rv, calibration, progress=progress).keep_float
    else:  # the accuracy budget, closed loop on held-out data (budget.py); no tolerance, no loop
        from .budget_stage import budget_keep

        keep = budget_keep(rv, model, dict(calibration.amax), list(keep), progress=progress)
    qdq = quantize_model(model, calibration.amax, keep_float=keep)
    out_model = qdq.model
    if rv.target == "tensorrt" and qdq.float_nodes:  # strongly typed: kept layers run FP16 only if the graph says so
        from .fp16 import fp16_islands
        from .placement import node_names

        first = {n: node.output[0] for n, node in zip(node_names(model), model.graph.node) if node.output}
        fp16_outputs = [first[n] for n in qdq.float_nodes if n in first]
        out_model = fp16_islands(out_model, fp16_outputs)
    path = rv.workdir / QDQ_FILENAME
    write_model(out_model, path)
    log.info("%s: %d tensors INT8, %d kept float -> %s", rv.name, len(qdq.quantized), len(qdq.kept_float), path)
    return QuantizedModel(
        path=path, quantized=qdq.quantized, kept_float=qdq.kept_float, float_nodes=qdq.float_nodes,
        amax=dict(calibration.amax), calibration_cache=calibration.cache_path,
    )


def check_variant(rv: "ResolvedVariant") -> None:
    """Raise GeneratorError now if the variant's keep_float names something the model lacks."""
    from .placement import node_names, plan
    from .qdq import resolve_keep_float

    settings = _calibration_settings(rv)
    model = _load(rv.model.onnx)
    try:
        resolve_keep_float(plan(model), settings.keep_float, node_names(model))
    except GeneratorError as exc:
        raise GeneratorError(f"variant {rv.name}: calibration.{exc.message}", where=rv.model.onnx) from None


def sensitivity_variant(
    rv: "ResolvedVariant",
    calibration: "CalibrationResult",
    *,
    mode: "Mode" = "loo",
    json_path: Path | None = None,
    progress: bool = True,
) -> SensitivityResult:
    """Rank the variant's quantized tensors (and run the target_drop fallback when the spec sets one).

    Writes sensitivity_<mode>.json and .png under rv.workdir / "sensitivity" (JSON also to json_path).
    """
    from .evaluate import Evaluator
    from .report import ranking_json, ranking_plot
    from .sensitivity import fallback, rank

    settings = _calibration_settings(rv)
    metric = rv.model.evaluation.metric if rv.model.evaluation is not None else "top1"
    evaluator = Evaluator(_load(calibration.model_path or rv.model.onnx), calibration.amax, load_evalset(rv), metric=metric)  # issue 12
    base_keep = list(settings.keep_float)
    ranking = rank(evaluator, mode=mode, keep_float=base_keep, progress=progress)
    keep = base_keep + [t for t in ranking.top(settings.keep_float_top_k) if t not in base_keep]
    found = None
    if settings.target_drop is not None:
        found = fallback(evaluator, ranking, settings.target_drop, keep_float=keep, progress=progress)
        keep = list(found.keep_float)
    out_dir = rv.workdir / "sensitivity"
    data = {
        "variant": rv.name, "model": str(rv.model.onnx), "fingerprint": _fingerprint(rv, calibration, mode),
        "keep_float": keep, **ranking_json(ranking, found),
    }
    default_json = out_dir / f"sensitivity_{mode}.json"
    atomic_write_json(default_json, data)
    if json_path is not None:
        atomic_write_json(json_path, data)
    plot = out_dir / f"sensitivity_{mode}.png"
    ranking_plot(ranking, plot)
    return SensitivityResult(ranking, found, tuple(keep), json_path or default_json, plot)


def _fingerprint(rv: "ResolvedVariant", calibration: "CalibrationResult", mode: str) -> dict[str, str]:
    """Content hashes of what decides a sensitivity result (model, evaluation data, amax, settings)."""
    from ..calibrate.manifest import fingerprint

    settings = _calibration_settings(rv)
    evaluation = rv.model.evaluation
    source = evaluation.data if evaluation is not None else settings.data
    decided_by = {
        "mode": mode,
        "amax": sorted(calibration.amax.items()),
        "keep_float": settings.keep_float,
        "keep_float_top_k": settings.keep_float_top_k,
        "target_drop": settings.target_drop,
        "evaluation": evaluation.model_dump(mode="json", exclude={"data"}) if evaluation is not None else None,
        "preprocessing": source.model_dump(mode="json", exclude={"path"}),
        "sensitivity_revision": SENSITIVITY_REVISION,
    }
    fp = fingerprint(rv.model.onnx, source, decided_by)
    return {"tool": fp.tool_version, "model": fp.model_sha256, "data": fp.data_sha256, "settings": fp.settings_sha256}


def _stored_decision(rv: "ResolvedVariant", calibration: "CalibrationResult") -> list[str] | None:
    """keep_float from the last leave-one-out run when its fingerprint still matches, else None."""
    import json

    path = rv.workdir / "sensitivity" / "sensitivity_loo.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keep = stored.get("keep_float") if isinstance(stored, dict) else None
    if stored.get("fingerprint") != _fingerprint(rv, calibration, "loo") or not isinstance(keep, list):
        return None
    log.info("%s: sensitivity is up to date (%s): keeping %d tensor(s) in float", rv.name, path, len(keep))
    return [str(t) for t in keep]


def load_evalset(rv: "ResolvedVariant") -> "EvalSet":
    """The model's evaluation data (limited to evaluation.samples) as whole arrays.

    Without an evaluation block, the calibration data is used and the metric becomes top-1
    agreement with FP32 (a warning says so).
    """
    from ..data import load_arrays
    from ..signature import read_onnx_signature
    from .evaluate import EvalSet

    evaluation = rv.model.evaluation
    if evaluation is not None:
        source, limit, batch_size = evaluation.data, evaluation.samples, evaluation.batch_size
    else:
        settings = _calibration_settings(rv)
        log.warning("%s: no evaluation block: sensitivity uses the calibration data and top-1 agreement", rv.model.name)
        source, limit, batch_size = settings.data, settings.samples, settings.batch_size
    signature = read_onnx_signature(rv.model.onnx)
    arrays, labels = load_arrays(source, signature, batch_size=batch_size, limit=limit)
    if not arrays:
        raise GeneratorError(f"model {rv.model.name}: the evaluation data yielded no samples")
    return EvalSet(arrays, labels if evaluation is not None else None, batch_size)


def write_model(model: "onnx.ModelProto", path: Path) -> None:
    """Serialize and replace `path` atomically (same bytes for the same model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GiB limit
        raise GeneratorError(f"cannot serialize the Q/DQ model: {exc}", where=path) from None
    atomic_write_bytes(path, data)


def _calibration_settings(rv: "ResolvedVariant") -> "Calibration":
    settings = rv.variant.calibration
    if settings is None:
        raise GeneratorError(f"variant {rv.name} is {rv.precision}: only int8 variants are quantized")
    return settings


def _load(path: Path) -> "onnx.ModelProto":
    from ..signature import load_onnx

    return load_onnx(path)


__all__ = ["QDQ_FILENAME", "QuantizedModel", "SensitivityResult", "calibration_tensors", "check_variant", "load_evalset", "quantize_variant",
           "sensitivity_variant", "write_model"]
