"""`build_variant(rv, source) -> Artifact`: the deployable model file of one variant.

CPU targets (python-onnxruntime, onnxruntime) need no TensorRT: fp32 serves the source ONNX as is,
fp16 an FP16 copy (onnxconverter-common), int8 the quantize stage's Q/DQ ONNX rewritten for
onnxruntime's integer kernels (model_int8_ort.onnx, see ort_int8.py; as is with build.ort_int8: off).
The tensorrt target builds a plan with the installed TensorRT (`plan.builder_plan` decides, `apply.apply_plan`
calls TensorRT), writes `model.plan.json` (its signature, read back from the engine) and
`reproduce.sh` beside it, and a manifest; it rebuilds only when the manifest would change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import Artifact, cc_plan_name
from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from ..signature import engine_signature_from_json, sidecar_path, write_engine_signature
from ..signature import Signature, read_onnx_signature
from ..spec import ResolvedVariant
from ..spec.model import CPU_TARGETS
from .apply import apply_plan
from .fp16 import convert_to_fp16
from .inspection import deserialize, engine_signature
from ..manifest import describe_change, file_entry, is_up_to_date, new_manifest, write_manifest
from .plan import FP16_ONNX, BuildPlan, builder_plan
from .reproduce import write_reproduce_script
from .tensorrt_env import GpuInfo, gpu_info, load_tensorrt

if TYPE_CHECKING:
    from ..quantize import QuantizedModel

log = logging.getLogger(__name__)



def build_variant(
    rv: ResolvedVariant,
    source: "Path | QuantizedModel",
    *,
    force: bool = False,
    calibration_cache: Path | None = None,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None,
) -> Artifact:
    """Build (or reuse) the artifact of `rv` from `source`: the FP32 ONNX, or the quantize stage's result for int8.

    `calibration_cache`: our TensorRT calibration cache, for int8 with build.int8_mode: implicit
    (default: where `trgen calibrate` wrote it). `calibration_batches`: input batches for
    build.trt_calibrates (default: the variant's calibration data). `force` rebuilds even when nothing changed.
    """
    quantized = source if not isinstance(source, (str, Path)) else None
    source = quantized.path if quantized is not None else Path(source)
    if quantized is not None and calibration_cache is None:
        calibration_cache = quantized.calibration_cache
    if not source.is_file():
        raise GeneratorError("model file not found: run the earlier stages first (`trgen run`)", where=source)
    if rv.target in CPU_TARGETS:
        return onnx_artifact(rv, source, force=force, amax=quantized.amax if quantized is not None else None)
    return plan_artifact(
        load_tensorrt(), rv, source, gpu=gpu_info(), force=force,
        calibration_cache=calibration_cache, calibration_batches=calibration_batches,
    )


def onnx_artifact(
    rv: ResolvedVariant, source: Path, *, force: bool = False, amax: Mapping[str, float] | None = None
) -> Artifact:
    """The ONNX file a CPU variant serves; fp16 and int8 convert once and reuse the copy while unchanged.

    `amax`: the variant's calibrated amax (int8), for the scales the onnxruntime form adds.
    """
    if rv.precision == "int8":
        from ..quantize.ort_form import ort_int8_artifact  # the Q/DQ model rewritten for ORT's integer kernels

        return ort_int8_artifact(rv, source, amax or {}, force=force)
    if rv.precision != "fp16":
        return Artifact(rv.name, "onnx", source, read_onnx_signature(source))
    from onnxconverter_common import __version__ as converter_version

    dest = rv.workdir / FP16_ONNX
    keep_io_types = rv.build.keep_io_types
    expected = new_manifest(
        rv.name, "onnx", inputs={"onnx": file_entry(source)}, keep_io_types=keep_io_types,
        onnxconverter_common=converter_version,
    )
    if force or not is_up_to_date(dest, expected):
        log.info("%s: converting to FP16 (%s)", rv.name, "forced" if force else describe_change(dest, expected))
        convert_to_fp16(source, dest, keep_io_types=keep_io_types)
        write_manifest(dest, expected)
    else:
        log.info("%s: up to date (%s)", rv.name, dest)
    return Artifact(rv.name, "onnx", dest, read_onnx_signature(dest))


def plan_artifact(
    trt: Any,
    rv: ResolvedVariant,
    source: Path,
    *,
    gpu: GpuInfo,
    force: bool = False,
    calibration_cache: Path | None = None,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None,
) -> Artifact:
    """Build a TensorRT plan with the given `trt` module (real, or a double in tests)."""
    onnx_sig = read_onnx_signature(source)
    plan = builder_plan(
        rv, trt.__version__, source=source, onnx_signature=onnx_sig,
        calibration_cache=calibration_cache,
        compute_capability=None if gpu.compute_capability == "unknown" else gpu.compute_capability,
    )
    expected = _plan_manifest(rv, plan, gpu)
    sidecar = sidecar_path(plan.plan_file)
    if not force and is_up_to_date(plan.plan_file, expected, (sidecar,)):
        log.info("%s: up to date (%s)", rv.name, plan.plan_file)
        signature = engine_signature_from_json(sidecar)
    else:
        log.info("%s: building (%s)", rv.name, "forced" if force else describe_change(plan.plan_file, expected))
        if plan.fp16_from is not None:
            convert_to_fp16(plan.fp16_from, plan.network_onnx, keep_io_types=plan.keep_io_types)
        write_reproduce_script(plan)  # first, so it is there to try by hand when the build fails
        if plan.calibrator == "tensorrt" and calibration_batches is None:
            calibration_batches = _calibration_batches(rv, onnx_sig)
        started = time.monotonic()
        engine = apply_plan(trt, plan, plan.network_onnx, calibration_batches=calibration_batches)
        vc = "VERSION_COMPATIBLE" in plan.builder_flags
        signature = engine_signature(trt, deserialize(trt, engine, where=plan.plan_file, version_compatible=vc))
        atomic_write_bytes(plan.plan_file, engine)
        write_engine_signature(sidecar, signature)
        write_manifest(plan.plan_file, expected, seconds=time.monotonic() - started)
    return Artifact(rv.name, "plan", plan.plan_file, signature, cc_model_files=_cc_model_files(rv))


def _calibration_batches(rv: ResolvedVariant, signature: Signature) -> Iterable[Mapping[str, np.ndarray]]:
    """The variant's calibration data, for TensorRT's own calibrator (build.trt_calibrates)."""
    from ..data import load_batches

    calibration = rv.variant.calibration
    assert calibration is not None  # int8 variants always have one
    batches = load_batches(
        calibration.data, signature, batch_size=calibration.batch_size, limit=calibration.samples
    )
    return (batch.inputs for batch in batches)


def _plan_manifest(rv: ResolvedVariant, plan: BuildPlan, gpu: GpuInfo) -> dict[str, Any]:
    inputs: dict[str, Any] = {"onnx": file_entry(plan.fp16_from or plan.network_onnx)}
    if plan.calibrator == "cache":
        inputs["calibration_cache"] = file_entry(plan.calibration_cache)
    elif plan.calibrator == "tensorrt" and rv.variant.calibration is not None:
        inputs["calibration"] = rv.variant.calibration.model_dump(mode="json")
    return new_manifest(
        rv.name, "plan", tensorrt=plan.tensorrt_version, gpu=gpu.to_dict(), plan=plan.to_dict(), inputs=inputs
    )


def _cc_model_files(rv: ResolvedVariant) -> tuple[tuple[str, Path], ...]:
    """Plans of the listed compute capabilities that exist (built here or copied from other GPUs)."""
    wanted = rv.build.compute_capabilities
    found = tuple((cc, rv.workdir / cc_plan_name(cc)) for cc in wanted if (rv.workdir / cc_plan_name(cc)).is_file())
    missing = [cc for cc in wanted if cc not in dict(found)]
    if missing:
        log.warning(
            "%s: no plan yet for compute capabilities %s: run `trgen build` on such GPUs and copy the "
            "model_sm*.plan files into %s", rv.name, ", ".join(missing), rv.workdir,
        )
    return found
