"""What to ask TensorRT for, decided without TensorRT: `builder_plan(rv, trt_version, ...) -> BuildPlan`.

Every choice that depends on the spec or the TensorRT version lives here as plain data (flag names,
profile shapes, pool sizes, which ONNX file to parse, which calibrator), so it is tested on machines
without a GPU; `apply.apply_plan` then turns a plan into TensorRT calls one to one.

Version rules (see /work/shared/reference/tensorrt-int8.md):
- fp16: TensorRT 10 sets `BuilderFlag.FP16`; TensorRT 11 has no precision flags, so the network is
  parsed from an FP16 copy of the ONNX model (I/O kept float32 when `build.keep_io_types`).
- int8 explicit: the Q/DQ ONNX, with `NetworkDefinitionCreationFlag.STRONGLY_TYPED` on 10.x (11.x is
  always strongly typed; the flag is deprecated there and not passed).
- int8 implicit (10.x only): the FP32 ONNX with `BuilderFlag.INT8` and an entropy calibrator that
  hands TensorRT our calibration cache, or (`build.trt_calibrates`) feeds it calibration batches.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..artifacts import cc_plan_name
from ..calibrate.cache import algorithm_for
from ..errors import GeneratorError
from ..signature import Signature, TensorSig
from ..spec import BuildSettings, ResolvedVariant
from .tensorrt_env import is_strongly_typed_only, version_tuple

CalibratorMode = Literal["none", "cache", "tensorrt"]
FP16_ONNX = "model_fp16.onnx"
TRT_CALIBRATION_CACHE = "tensorrt_calibration.cache"
_HARDWARE = {"none": None, "ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


@dataclass(frozen=True)
class InputShapes:
    """One input of one optimisation profile: full shapes including the batch dimension."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@dataclass(frozen=True)
class BuildPlan:
    """Everything `apply_plan` does, as data. Flag and enum members are TensorRT's attribute names."""

    variant: str
    precision: str
    tensorrt_version: str
    network_onnx: Path  # the model TensorRT parses
    fp16_from: Path | None  # convert this FP32 model to `network_onnx` (FP16) before parsing
    keep_io_types: bool
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag members
    builder_flags: tuple[str, ...]  # BuilderFlag members
    profiles: tuple[tuple[InputShapes, ...], ...]  # empty: static shapes, no profile needed
    memory_pools: tuple[tuple[str, int], ...]  # (MemoryPoolType member, bytes)
    optimization_level: int | None
    hardware_compatibility: str | None  # HardwareCompatibilityLevel member
    timing_cache: Path
    calibrator: CalibratorMode
    calibration_cache: Path | None  # 'cache': ours, read; 'tensorrt': where TensorRT's is written
    plan_file: Path
    calibration_algorithm: str | None = None  # 'tensorrt': which calibrator class (cache mode: its header says)
    profiling_verbosity: str = "DETAILED"  # ProfilingVerbosity member: DETAILED lets the inspector show precisions

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings), for the build manifest."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def builder_plan(
    rv: ResolvedVariant,
    trt_version: str,
    *,
    source: Path,
    onnx_signature: Signature,
    calibration_cache: Path | None = None,
    compute_capability: str | None = None,
    gpu_name: str | None = None,
) -> BuildPlan:
    """Decide the TensorRT build of one tensorrt variant. Raises GeneratorError for impossible asks.

    `source` is the FP32 ONNX (fp32/fp16) or the Q/DQ ONNX (int8 explicit); `onnx_signature` its
    inputs/outputs (the Q/DQ model has the same). Implicit INT8 builds from the spec's FP32 model.
    `gpu_name` / `compute_capability` pick the timing cache (one per GPU model and TensorRT).
    """
    settings = rv.build
    where = f"variant {rv.name}"
    choice = precision_choice(rv, trt_version, source=Path(source), calibration_cache=calibration_cache)
    builder_flags = choice.builder_flags + (("VERSION_COMPATIBLE",) if settings.version_compatible else ())
    return BuildPlan(
        variant=rv.name,
        precision=rv.precision,
        tensorrt_version=trt_version,
        network_onnx=choice.network,
        fp16_from=choice.fp16_from,
        keep_io_types=settings.keep_io_types,
        network_flags=choice.network_flags,
        builder_flags=builder_flags,
        profiles=plan_profiles(rv, onnx_signature),
        memory_pools=(("WORKSPACE", settings.workspace_mib << 20),) if settings.workspace_mib else (),
        optimization_level=settings.optimization_level,
        hardware_compatibility=_HARDWARE[settings.hardware_compatibility],
        timing_cache=timing_cache_path(rv, trt_version, gpu_name, compute_capability),
        calibrator=choice.calibrator,
        calibration_cache=choice.cache,
        plan_file=rv.workdir / plan_file_name(settings, compute_capability, where=where),
        calibration_algorithm=choice.algorithm,
    )


@dataclass(frozen=True)
class PrecisionChoice:
    """What the precision asks of TensorRT: the model to parse, flags, and the INT8 calibrator."""

    network: Path
    fp16_from: Path | None = None
    network_flags: tuple[str, ...] = ()
    builder_flags: tuple[str, ...] = ()
    calibrator: CalibratorMode = "none"
    cache: Path | None = None
    algorithm: str | None = None


def precision_choice(
    rv: ResolvedVariant, trt_version: str, *, source: Path, calibration_cache: Path | None
) -> PrecisionChoice:
    """fp32 as is; fp16 by flag (10.x) or an FP16 copy (11.x); int8 by Q/DQ (explicit) or calibrator (implicit)."""
    settings = rv.build
    if settings.trt_calibrates and not (rv.precision == "int8" and settings.int8_mode == "implicit"):
        raise GeneratorError("build.trt_calibrates only applies to int8 variants with build.int8_mode: implicit", where=f"variant {rv.name}")
    strongly_typed = is_strongly_typed_only(trt_version)
    if rv.precision == "fp16":
        copy = strongly_typed or not settings.keep_io_types  # 11.x: precision comes from the graph only
        return PrecisionChoice(
            network=rv.workdir / FP16_ONNX if copy else source, fp16_from=source if copy else None,
            builder_flags=() if strongly_typed else ("FP16",),
        )
    if rv.precision == "int8" and settings.int8_mode == "explicit":
        return PrecisionChoice(network=source, network_flags=() if strongly_typed else ("STRONGLY_TYPED",))
    if rv.precision == "int8":
        return implicit_int8_choice(rv, trt_version, calibration_cache)
    return PrecisionChoice(network=source)


def implicit_int8_choice(rv: ResolvedVariant, trt_version: str, calibration_cache: Path | None) -> PrecisionChoice:
    """TensorRT 10 only: the FP32 model, BuilderFlag.INT8, and our cache or TensorRT's own calibration."""
    where = f"variant {rv.name}"
    if is_strongly_typed_only(trt_version):
        raise GeneratorError(
            f"implicit INT8 (BuilderFlag.INT8 with a calibrator) was removed in TensorRT {trt_version}: "
            "set build.int8_mode: explicit to build from the calibrated Q/DQ ONNX model",
            where=where,
        )
    if rv.build.trt_calibrates:
        assert rv.variant.calibration is not None  # the spec requires it for int8
        return PrecisionChoice(
            network=rv.model.onnx, builder_flags=("INT8",), calibrator="tensorrt",
            cache=rv.workdir / TRT_CALIBRATION_CACHE, algorithm=algorithm_for(rv.variant.calibration.method),
        )
    if calibration_cache is None:
        raise GeneratorError("implicit INT8 needs our calibration cache: run `trgen calibrate` first", where=where)
    return PrecisionChoice(network=rv.model.onnx, builder_flags=("INT8",), calibrator="cache", cache=Path(calibration_cache))


def timing_cache_path(rv: ResolvedVariant, trt_version: str, gpu_name: str | None, compute_capability: str | None) -> Path:
    """One timing cache per GPU model, compute capability and TensorRT version.

    Timings are only valid for the GPU and TensorRT that measured them (TensorRT refuses others), so a
    single file shared by every machine would be thrown away and rewritten by each. `build.timing_cache`
    naming a folder (existing, or written with a trailing '/') holds the per-GPU files; naming a
    file uses exactly that file.
    """
    chosen = rv.build.timing_cache
    if chosen is not None and not (Path(chosen).is_dir() or str(chosen).endswith(("/", "\\"))):
        return Path(chosen)
    folder = Path(chosen) if chosen is not None else rv.workdir.parent
    slug = re.sub(r"[^a-z0-9]+", "-", (gpu_name or "unknown-gpu").lower()).strip("-") or "unknown-gpu"
    cc = (compute_capability or "unknown").replace(".", "")
    return folder / f"timing-{slug}-sm{cc}-trt{'.'.join(map(str, version_tuple(trt_version)))}.cache"


def plan_file_name(settings: BuildSettings, compute_capability: str | None, *, where: str) -> str:
    """'model.plan', or 'model_sm80.plan' when the spec lists compute capabilities (one plan each)."""
    wanted = settings.compute_capabilities
    if not wanted:
        return "model.plan"
    if compute_capability not in wanted:
        raise GeneratorError(
            f"this GPU has compute capability {compute_capability}, not one of build.compute_capabilities "
            f"{wanted}: build this variant on such a GPU (one plan per capability) or add {compute_capability!r}",
            where=where,
        )
    return cc_plan_name(compute_capability)


def plan_profiles(rv: ResolvedVariant, signature: Signature) -> tuple[tuple[InputShapes, ...], ...]:
    """The spec's profiles checked against the model, or one derived from its shapes and max_batch_size.

    Derived profile (no `profiles` in the spec): the batch dimension goes from 1 to max_batch_size with
    opt = max; any other dynamic dimension needs explicit profiles.
    """
    model = rv.model
    if model.profiles:
        return tuple(_spec_profile(rv, p, signature.inputs) for p in range(len(model.profiles)))
    dynamic = [t for t in signature.inputs if -1 in t.shape]
    if not dynamic:
        return ()
    for tensor in dynamic:
        if -1 in tensor.shape[1:]:
            raise GeneratorError(
                f"input {tensor.name!r} {list(tensor.shape)} has dynamic dimensions besides the batch: "
                "give min/opt/max shapes in the model's 'profiles'",
                where=f"model {model.name}",
            )
    if model.max_batch_size == 0:
        names = ", ".join(repr(t.name) for t in dynamic)
        raise GeneratorError(
            f"input {names} has a dynamic batch dimension: set max_batch_size or 'profiles' on the model",
            where=f"model {model.name}",
        )
    batch = model.max_batch_size
    return (tuple(InputShapes(t.name, (1, *t.shape[1:]), (batch, *t.shape[1:]), (batch, *t.shape[1:])) for t in dynamic),)


def _spec_profile(rv: ResolvedVariant, index: int, inputs: tuple[TensorSig, ...]) -> tuple[InputShapes, ...]:
    profile = rv.model.profiles[index]
    where = f"model {rv.model.name}: profiles[{index}]"
    known = {t.name for t in inputs}
    for name in profile:
        if name not in known:
            raise GeneratorError(f"{name!r} is not a model input (inputs: {', '.join(sorted(known))})", where=where)
    shapes = []
    for tensor in inputs:
        shape_range = profile.get(tensor.name)
        if shape_range is None:
            if -1 in tensor.shape:
                raise GeneratorError(f"dynamic input {tensor.name!r} {list(tensor.shape)} needs min/opt/max here", where=where)
            continue
        lo, opt, hi = tuple(shape_range.min), tuple(shape_range.opt), tuple(shape_range.max)
        if len(lo) != len(tensor.shape):
            raise GeneratorError(
                f"{tensor.name}: rank {len(lo)} but the model's input is {list(tensor.shape)} (rank {len(tensor.shape)})",
                where=where,
            )
        for axis, dim in enumerate(tensor.shape):
            if dim != -1 and not lo[axis] == opt[axis] == hi[axis] == dim:
                raise GeneratorError(
                    f"{tensor.name}: dimension {axis} is fixed at {dim} in the model, so min/opt/max must all be {dim}",
                    where=where,
                )
        shapes.append(InputShapes(tensor.name, lo, opt, hi))
    return tuple(shapes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
