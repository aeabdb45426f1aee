"""`build_variant(rv, source) -> Artifact`: the deployable model file of one variant.

CPU targets (python-onnxruntime, onnxruntime) need no TensorRT: fp32 serves the source ONNX as is,
fp16 an FP16 copy (onnxconverter-common), int8 the quantize stage's Q/DQ ONNX rewritten for
onnxruntime's integer kernels (model_int8_ort.onnx, see ort_int8.py; as is with build.ort_int8: off).
The tensorrt target builds a plan with the installed TensorRT (`plan.builder_plan` decides, `apply.apply_plan`
calls TensorRT) in a child process (`child.build_isolated`), writes `model.plan.json` (its signature,
read back from the engine), `model.plan.layers.json` (each layer's precision, `layers`) and
`reproduce.sh` beside it, and a manifest; it rebuilds only when the manifest would change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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
from ..manifest import describe_change, file_entry, is_up_to_date, new_manifest, write_manifest
from .child import build_isolated
from .fp16 import convert_to_fp16
from .job import build_engine
from .layers import layers_path, write_layer_report
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
    quantized = None if isinstance(source, (str, Path)) else source
    path = Path(source) if isinstance(source, (str, Path)) else source.path
    if quantized is not None and calibration_cache is None:
        calibration_cache = quantized.calibration_cache
    if not path.is_file():
        raise GeneratorError("model file not found: run the earlier stages first (`trgen run`)", where=path)
    if rv.target in CPU_TARGETS:
        return onnx_artifact(rv, path, force=force, amax=quantized.amax if quantized is not None else None)
    return plan_artifact(
        load_tensorrt(), rv, path, gpu=gpu_info(), force=force,
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
    isolate: bool = True,
) -> Artifact:
    """Build a TensorRT plan with the given `trt` module (real, or a double in tests).

    `isolate`: build in a child process (`child.build_isolated`), so a TensorRT crash is a one-line
    run-time failure; False builds in this process (tests that read the double's call log).
    """
    onnx_sig = read_onnx_signature(source)
    known = (None, "unknown")
    plan = builder_plan(
        rv, trt.__version__, source=source, onnx_signature=onnx_sig, calibration_cache=calibration_cache,
        compute_capability=None if gpu.compute_capability in known else gpu.compute_capability,
        gpu_name=None if gpu.name in known else gpu.name,
    )
    expected = _plan_manifest(rv, plan, gpu)
    sidecar = sidecar_path(plan.plan_file)
    if not force and is_up_to_date(plan.plan_file, expected, (sidecar, layers_path(plan.plan_file))):
        log.info("%s: up to date (%s)", rv.name, plan.plan_file)
        signature = engine_signature_from_json(sidecar)
    else:
        log.info("%s: building (%s)", rv.name, "forced" if force else describe_change(plan.plan_file, expected))
        signature = _build_plan(trt, rv, plan, expected, onnx_sig, calibration_batches, isolate=isolate)
    return Artifact(rv.name, "plan", plan.plan_file, signature, cc_model_files=_cc_model_files(rv))


def _build_plan(
    trt: Any, rv: ResolvedVariant, plan: BuildPlan, expected: dict[str, Any], onnx_sig: Signature,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None, *, isolate: bool,
) -> Signature:
    """Build, then write the plan, its signature, its layer report and (last) its manifest."""
    if plan.fp16_from is not None:
        convert_to_fp16(plan.fp16_from, plan.network_onnx, keep_io_types=plan.keep_io_types)
    write_reproduce_script(plan)  # first, so it is there to try by hand when the build fails
    if plan.calibrator == "tensorrt" and calibration_batches is None:
        calibration_batches = CalibrationSource.of(rv, onnx_sig)
    started = time.monotonic()
    build = build_isolated if isolate else build_engine
    output = build(trt, plan, calibration_batches=calibration_batches)
    atomic_write_bytes(plan.plan_file, output.engine)
    write_engine_signature(sidecar_path(plan.plan_file), output.signature)
    write_layer_report(plan.plan_file, output.report, output.information)
    report = output.report
    if not report.passed:
        log.warning("%s: layers meant to run INT8 do not: %s", rv.name, "; ".join(report.problems()))
    for note in report.notes():
        log.info("%s: %s", rv.name, note)
    outcome = {
        "layer_precisions": report.counts, "int8_problems": report.problems(), "int8_unverified": list(report.unverified),
        "unscaled_tensors": list(report.unscaled),
    }
    write_manifest(plan.plan_file, expected, seconds=time.monotonic() - started, outcome=outcome)
    return output.signature


@dataclass(frozen=True)
class CalibrationSource:
    """The variant's calibration data as TensorRT's own calibrator reads it (build.trt_calibrates).

    Picklable (a description, not the arrays), so the build process loads the data itself.
    """

    data: Any  # the spec's data source
    signature: Signature
    batch_size: int
    limit: int | None
    picklable: bool = True

    @classmethod
    def of(cls, rv: ResolvedVariant, signature: Signature) -> "CalibrationSource":
        calibration = rv.variant.calibration
        assert calibration is not None  # int8 variants always have one
        return cls(calibration.data, signature, calibration.batch_size, calibration.samples)

    def __iter__(self) -> Iterator[Mapping[str, np.ndarray]]:
        from ..data import load_batches

        for batch in load_batches(self.data, self.signature, batch_size=self.batch_size, limit=self.limit):
            yield batch.inputs


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
