"""`calibrate_variant`: data -> activation histograms -> thresholds -> cache, manifest and report.

Outputs go under `rv.workdir / "calibration"`: `manifest.json`, `calibration.cache` (unless the spec
sets `calibration.cache`) and `report/`. They are written into a temporary folder beside it and
moved into place only when everything succeeded, so an error leaves the previous outputs (or
nothing) behind, never a half-written set.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GeneratorError
from ..fileio import staged_dir
from ..signature import Signature, TensorSig, load_onnx, onnx_signature
from ..spec.model import ResolvedVariant
from ..spec.stages import Calibration
from . import cache as trt_cache
from .calibrators import GUARD_RATIO, AmaxResult, AmaxSettings, compute_amax
from .collect import collect_histograms
from ..data import Batch, load_batches
from ..data.batches import available_samples
from .histogram import NUM_BINS, Histogram
from .manifest import MANIFEST_NAME, Fingerprint, amax_from, fingerprint, manifest_document, matches, read_manifest, write_json

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

CALIBRATOR_REVISION = 1  # bump when the maths changes, so stored results are recomputed


@dataclass(frozen=True)
class CalibrationResult:
    """What calibration produced for one variant; `amax` maps activation tensor name -> amax."""

    variant: str
    method: str
    amax: dict[str, float]
    cache_path: Path
    manifest_path: Path
    report_dir: Path
    skipped: bool
    model_path: Path | None = None  # the graph calibrated, which INT8 is built from (`prepare_variant`)


def calibrate_variant(
    rv: ResolvedVariant,
    tensors: Sequence[str] | None = None,
    *,
    model: "onnx.ModelProto | None" = None,
    model_path: Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> CalibrationResult:
    """Calibrate an int8 variant on `tensors` (skipped when nothing changed).

    The caller says which tensors (the quantize stage knows where its Q/DQ pairs go:
    `generator.quantize.calibration_tensors`); None calibrates every float activation the graph
    produces, as TensorRT's EntropyCalibration2 does before layer fusion. `model_path` (and `model`,
    loaded from it) is the graph to calibrate: the prepared one (`prepare_variant`) in the pipeline,
    the user's FP32 model when not given.
    """
    calibration = rv.variant.calibration
    if calibration is None:
        raise GeneratorError(f"variant {rv.name!r} is {rv.precision}: only int8 variants are calibrated")
    model_path = Path(model_path if model_path is not None else rv.model.onnx)
    model = model if model is not None else load_model(model_path)
    result = calibrate_model(
        model_path,
        calibration,
        rv.workdir / "calibration",
        variant=rv.name,
        tensors=list(tensors) if tensors is not None else float_activations(model),
        model=model,
        force=force,
        progress=progress,
    )
    return dataclasses.replace(result, model_path=model_path)


@contextmanager
def prepare_variant(rv: ResolvedVariant, *, force: bool = False) -> Iterator[Path]:
    """`<variant workdir>/model_prepared.onnx`: the graph INT8 is calibrated on and built from (prepare.py).

    A context: when the block fails (bad data, say), a prepared copy written for it is removed again,
    with the folders made for it, so that bad input leaves nothing behind.
    """
    from ..manifest import manifest_path
    from .prepare import PREPARED_ONNX, prepare_model

    dest = rv.workdir / PREPARED_ONNX
    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    existed = dest.is_file()
    path = prepare_model(Path(rv.model.onnx), dest, variant=rv.name, force=force)
    try:
        yield path
    except BaseException:
        if not existed:
            dest.unlink(missing_ok=True)
            manifest_path(dest).unlink(missing_ok=True)
            for folder in made:  # deepest first
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise


def float_activations(model: "onnx.ModelProto") -> list[str]:
    """Every float tensor the main graph computes (graph inputs and node outputs), in graph order."""
    from .collect import float_tensors

    return float_tensors(model)


def variant_cache_path(rv: ResolvedVariant) -> Path | None:
    """Where `calibrate_variant` writes the variant's calibration cache; None for variants it does not calibrate."""
    calibration = rv.variant.calibration
    if calibration is None:
        return None
    if calibration.cache is not None:
        return Path(calibration.cache)
    return rv.workdir / "calibration" / "calibration.cache"


def load_model(path: Path) -> "onnx.ModelProto":
    return load_onnx(path)


def calibrate_model(
    model_path: Path,
    calibration: Calibration,
    out_dir: Path,
    *,
    variant: str,
    tensors: Sequence[str],
    model: "onnx.ModelProto | None" = None,
    force: bool = False,
    progress: bool = True,
    trt_version: int | None = None,
) -> CalibrationResult:
    """Calibrate `tensors` of the model at `model_path` and write the outputs into `out_dir`."""
    tensors = list(dict.fromkeys(tensors))
    if not tensors:
        raise GeneratorError("no activation tensors to calibrate (no Conv/Gemm/MatMul inputs found)", where=model_path)
    version = trt_version if trt_version is not None else trt_cache.installed_trt_version()
    algorithm = trt_cache.algorithm_for(calibration.method)
    cache_path = Path(calibration.cache) if calibration.cache is not None else out_dir / "calibration.cache"
    settings = _settings(calibration, tensors, version, algorithm)
    fp = fingerprint(model_path, calibration.data, settings)
    result = CalibrationResult(
        variant=variant, method=calibration.method, amax={}, cache_path=cache_path,
        manifest_path=out_dir / MANIFEST_NAME, report_dir=out_dir / "report", skipped=False,
    )
    stored = None if force else _stored(result, fp, algorithm, version)
    if stored is not None:
        log.info("%s: calibration is up to date (%s); use --force to redo it", variant, result.manifest_path)
        return dataclasses.replace(result, amax=stored, skipped=True)

    if model is None:
        model = load_model(model_path)
    signature = onnx_signature(model, where=model_path)
    batches = _batches(calibration, signature, variant=variant, progress=progress)
    fixed = _fixed_batch(signature) is not None
    histograms, samples = collect_histograms(model, tensors, batches, where=model_path, fixed_batch=fixed)
    amax_settings = AmaxSettings.from_spec(calibration)
    results = {name: compute_amax(histograms[name], amax_settings) for name in tensors}
    if calibration.method == "auto":  # per-tensor choice by model-output error where candidates disagree (auto.py)
        from .auto import refine_on_holdout

        results = refine_on_holdout(model, results, histograms, calibration, onnx_signature(model, where=model_path))
    amax = {name: r.amax for name, r in results.items()}
    cache_text = trt_cache.format_cache(amax, algorithm=algorithm, version=version)
    document = manifest_document(
        variant=variant, model=model_path, fp=fp, settings=settings, results=results, histograms=histograms, samples=samples,
        cache=cache_path, cache_header=cache_text.splitlines()[0],
    )
    _write_outputs(
        out_dir, cache_path, cache_text, document, histograms, results, title=f"Calibration of {variant}", plots=calibration.plots
    )
    guarded = [name for name, r in results.items() if r.guarded]
    if guarded:
        log.info("%s: entropy guard replaced the threshold of %d tensor(s): %s", variant, len(guarded), ", ".join(guarded))
    return dataclasses.replace(result, amax=amax)


def _settings(calibration: Calibration, tensors: list[str], version: int, algorithm: str) -> dict[str, Any]:
    """Everything besides model and data contents that decides the outputs (hashed for the skip check).

    Paths stay out (the data's contents are hashed; the cache file is compared on disk), so moving
    the project keeps a calibration valid.
    """
    data = calibration.data.model_dump(mode="json")
    data.pop("path", None)
    return {
        "method": calibration.method,
        "percentile": calibration.percentile,
        "guard": calibration.guard,
        "guard_ratio": GUARD_RATIO,
        "plots": calibration.plots,
        "samples": calibration.samples,
        "batch_size": calibration.batch_size,
        "data": data,
        "tensors": tensors,
        "bins": NUM_BINS,
        "calibrator_revision": CALIBRATOR_REVISION,
        "trt_version": version,
        "cache_algorithm": algorithm,
    }


def _stored(paths: CalibrationResult, fp: Fingerprint, algorithm: str, version: int) -> dict[str, float] | None:
    """The previous amax when its manifest matches `fp` and its cache and report are intact, else None."""
    document = read_manifest(paths.manifest_path)
    if document is None or not matches(document, fp) or not paths.report_dir.is_dir():
        return None
    amax = amax_from(document)
    try:
        on_disk = paths.cache_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if amax is None or on_disk != trt_cache.format_cache(amax, algorithm=algorithm, version=version):
        return None
    return amax


def _batches(calibration: Calibration, signature: Signature, *, variant: str, progress: bool) -> Iterator[Batch]:
    """The calibration batches with a progress bar.

    A model whose batch dimension is fixed gets batches of exactly that size: the data is read with
    the batch dimension relaxed, and a smaller last batch is dropped (with a note).
    """
    from tqdm import tqdm

    batch_size, fixed = calibration.batch_size, _fixed_batch(signature)
    if fixed is not None:
        if fixed != batch_size:
            log.info("%s: the model's batch dimension is fixed at %d: calibrating in batches of %d", variant, fixed, fixed)
        batch_size = fixed
        relaxed = tuple(TensorSig(t.name, t.dtype, (-1, *t.shape[1:])) for t in signature.inputs)
        signature = dataclasses.replace(signature, inputs=relaxed)
    stream = load_batches(calibration.data, signature, batch_size=batch_size, limit=calibration.samples)
    held = available_samples(calibration.data)  # the bar counts the batches that will run (issue 9)
    total = math.ceil(min(calibration.samples, held if held is not None else calibration.samples) / batch_size)
    for batch in tqdm(stream, total=total, desc=f"calibrate {variant}", unit="batch", disable=not progress, leave=False):
        if fixed is not None and len(batch) != fixed:
            log.info("%s: dropped the last %d sample(s): the model only takes batches of %d", variant, len(batch), fixed)
            continue
        yield batch


def _fixed_batch(signature: Signature) -> int | None:
    """The batch size every input fixes (a positive first dimension on all inputs), else None."""
    firsts = {t.shape[0] if t.shape else -1 for t in signature.inputs}
    return firsts.pop() if len(firsts) == 1 and min(firsts) > 0 else None


def _write_outputs(
    out_dir: Path,
    cache_path: Path,
    cache_text: str,
    document: dict[str, Any],
    histograms: Mapping[str, Histogram],
    results: dict[str, AmaxResult],
    *,
    title: str,
    plots: bool = True,
) -> None:
    """Write everything into a temporary folder beside `out_dir`, then move it into place."""
    from .report import write_report

    cache_inside = cache_path.resolve().is_relative_to(out_dir.resolve())
    cache_temp: Path | None = None
    try:
        with staged_dir(out_dir) as staging:
            write_report(staging / "report", histograms, results, title=title, plots=plots)
            write_json(staging / MANIFEST_NAME, document)
            if cache_inside:
                inside = staging / cache_path.resolve().relative_to(out_dir.resolve())
                inside.parent.mkdir(parents=True, exist_ok=True)
                inside.write_text(cache_text, encoding="utf-8")
            else:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_temp = cache_path.with_name(f".{cache_path.name}.tmp-{os.getpid()}")
                cache_temp.write_text(cache_text, encoding="utf-8")
        if cache_temp is not None:
            os.replace(cache_temp, cache_path)
    except BaseException:
        if cache_temp is not None:
            cache_temp.unlink(missing_ok=True)
        raise
