"""The accuracy budget for one variant: its target, its held-out data, the loop, and its report.

Writes `<workdir>/budget/budget.json` and `budget.md`: where it measured (the calibration data, not
the evaluation data INT8 is judged on), every trial, what was kept in higher precision and what that
cost in model size (speed: `trgen bench` measures the served model; the CPU here says nothing about
a GPU's FP16 islands).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..errors import GeneratorError
from ..fileio import atomic_write_bytes, atomic_write_json
from .budget import Budget, Limits, meet_budget

if TYPE_CHECKING:
    import onnx

    from ..spec import ResolvedVariant
    from .evaluate import EvalSet

log = logging.getLogger("trgen.quantize")


def budget_target(rv: "ResolvedVariant") -> float | None:
    """calibration.target_drop, else the evaluation tolerance max_top1_drop, else None (no budget)."""
    settings = rv.variant.calibration
    if settings is None:
        return None
    if settings.target_drop is not None:
        return float(settings.target_drop)
    evaluation = rv.model.evaluation
    return float(evaluation.tolerances.max_top1_drop) if evaluation is not None else None


def held_out_set(rv: "ResolvedVariant") -> tuple["EvalSet", str]:
    """The calibration data (its labels if the source has them) as the loop's held-out split, and a description."""
    from ..data import load_arrays
    from ..signature import read_onnx_signature
    from .evaluate import EvalSet

    settings = rv.variant.calibration
    assert settings is not None
    signature = read_onnx_signature(rv.model.onnx)
    arrays, label_array = load_arrays(settings.data, signature, batch_size=settings.batch_size, limit=settings.samples)
    if not arrays:
        raise GeneratorError(f"variant {rv.name}: calibration.data yielded no samples for the accuracy budget")
    n = len(next(iter(arrays.values())))
    how = "its labels" if label_array is not None else "agreement with FP32 (no labels)"
    where = f"calibration data, {n} samples, {how}; not the evaluation data INT8 is judged on"
    return EvalSet(arrays, label_array, settings.batch_size), where


BUDGET_REVISION = 2  # bump when the loop's rules change, so stored decisions are redone


def budget_keep(rv: "ResolvedVariant", model: "onnx.ModelProto", amax: dict[str, float], keep: list[str], *,
                progress: bool = True) -> list[str]:
    """What to keep out of INT8 for the variant's budget: the stored decision when nothing changed, else the loop's."""
    if budget_target(rv) is None:
        return keep
    fp = _fingerprint(rv, amax, keep)
    stored = _stored(rv, fp)
    if stored is not None:
        log.info("%s: accuracy budget is up to date (%s): %d tensor(s) kept", rv.name, rv.workdir / "budget", len(stored))
        return stored
    result = run_budget(rv, model, amax, keep, progress=progress, fingerprint=fp)
    return list(result.keep_float) if result is not None else keep


def _fingerprint(rv: "ResolvedVariant", amax: dict[str, float], keep: list[str]) -> dict[str, str]:
    """Content hashes of what decides the budget (model, calibration data, amax, settings)."""
    from ..calibrate.manifest import fingerprint

    settings = rv.variant.calibration
    assert settings is not None
    evaluation = rv.model.evaluation
    decided_by = {
        "amax": sorted(amax.items()), "keep_float": keep, "target": budget_target(rv), "target_kind": rv.target,
        "metric": evaluation.metric if evaluation is not None else "top1", "samples": settings.samples,
        "passes": settings.budget_passes, "seconds": settings.budget_seconds, "revision": BUDGET_REVISION,
        "preprocessing": settings.data.model_dump(mode="json", exclude={"path"}),
    }
    fp = fingerprint(rv.model.onnx, settings.data, decided_by)
    return {"tool": fp.tool_version, "model": fp.model_sha256, "data": fp.data_sha256, "settings": fp.settings_sha256}


def _stored(rv: "ResolvedVariant", fp: dict[str, str]) -> list[str] | None:
    import json

    try:
        stored = json.loads((rv.workdir / "budget" / "budget.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keep = stored.get("keep_float") if isinstance(stored, dict) else None
    if stored.get("fingerprint") != fp or not isinstance(keep, list):
        return None
    return [str(t) for t in keep]


def run_budget(rv: "ResolvedVariant", model: "onnx.ModelProto", amax: dict[str, float], keep: list[str], *,
               progress: bool = True, fingerprint: dict[str, str] | None = None) -> Budget | None:
    """Meet the variant's budget (None when it has none) and write its report."""
    from .evaluate import Evaluator

    target = budget_target(rv)
    settings = rv.variant.calibration
    if target is None or settings is None:
        return None
    data, where = held_out_set(rv)
    metric = rv.model.evaluation.metric if rv.model.evaluation is not None else "top1"
    precision = "fp16" if rv.target == "tensorrt" else "fp32"
    evaluator = Evaluator(model, amax, data, metric=metric, fallback=precision)
    limits = Limits(max_passes=settings.budget_passes, max_seconds=settings.budget_seconds)
    result = meet_budget(evaluator, target, keep_float=keep, data=where, limits=limits, precision=precision, progress=progress)
    sizes = {"int8": _size(evaluator.build(keep)), "with_fallback": _size(evaluator.build(result.keep_float))}
    write_report(rv, result, sizes, fingerprint or {})
    if not result.met:
        log.warning("%s: accuracy budget %.2f not met on the held-out split (stopped: %s)", rv.name, target, result.stopped)
    return result


def _size(model: "onnx.ModelProto") -> int:
    return len(model.SerializeToString())


def budget_json(result: Budget, sizes: dict[str, int]) -> dict[str, Any]:
    return {
        "target_drop": result.target_drop, "metric": result.metric, "measured_on": result.data, "samples": result.samples,
        "fp32": asdict(result.fp32), "int8": asdict(result.int8), "met": result.met, "stopped": result.stopped,
        "passes": result.passes, "seconds": round(result.seconds, 3), "fallback_precision": result.precision,
        "keep_float": list(result.keep_float), "ranked": list(result.ranked),
        "trials": [{"fallbacks": t.fallbacks, "drop": t.drop, **asdict(t.score), "kept": list(t.kept)} for t in result.trials],
        "model_bytes": sizes,
    }


def write_report(rv: "ResolvedVariant", result: Budget, sizes: dict[str, int], fingerprint: dict[str, str]) -> None:
    folder = rv.workdir / "budget"
    atomic_write_json(folder / "budget.json", {**budget_json(result, sizes), "fingerprint": fingerprint})
    final = min(result.trials, key=lambda t: (t.drop, t.fallbacks)) if not result.met else min(
        (t for t in result.trials if t.drop <= result.target_drop + 1e-9), key=lambda t: t.fallbacks)
    lines = [
        f"# Accuracy budget of {rv.name}",
        "",
        f"Budget: drop of at most {result.target_drop:g} points of {result.metric}, measured on the {result.data}.",
        (f"FP32 {result.fp32.metric:.2f}; all INT8 {result.int8.metric:.2f}; "
         f"{'met' if result.met else 'NOT met'} with {final.fallbacks} tensor(s) in {result.precision}: "
         f"{final.score.metric:.2f} (drop {final.drop:.2f}). {result.passes} passes, {result.seconds:.1f} s, "
         f"stopped: {result.stopped}."),
        (f"Cost: model {sizes['int8']} bytes all INT8, {sizes['with_fallback']} bytes with the fallback "
         f"({sizes['with_fallback'] - sizes['int8']:+d}); speed: see `trgen bench` on the served model."),
        "",
        "| fallbacks | metric | drop | agreement | output error |",
        "|---|---|---|---|---|",
        *(f"| {t.fallbacks} | {t.score.metric:.2f} | {t.drop:.2f} | {t.score.agreement:.2f} | {t.score.error:.3g} |"
          for t in result.trials),
        "",
        "Kept in " + result.precision + ": " + (", ".join(f"`{t}`" for t in result.keep_float) or "nothing"),
        "",
    ]
    atomic_write_bytes(folder / "budget.md", "\n".join(lines).encode("utf-8"))
