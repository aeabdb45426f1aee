"""`apply_plan(trt, plan, onnx_path) -> bytes`: a BuildPlan turned into TensorRT calls, one to one.

Nothing here decides anything (that is `plan.builder_plan`); this module only makes the calls, so
the tests can run it against a recording double of the `tensorrt` module and compare the call log
with what the plan says. The timing cache is read before and written after every build, so later
builds (other variants, other runs) reuse the tactic timings. Before an implicit-INT8 build the
parsed network is checked against the calibration cache or data (`prebuild`), and an exception a
calibrator callback raised (which TensorRT swallows) is re-raised once the build returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibrate.cache import CalibrationCache, parse_cache
from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from . import trt_api
from .calibrator import cache_calibrator, data_calibrator
from .plan import BuildPlan
from .prebuild import check_cache_coverage, check_calibration_batch, network_inputs
from .tensorrt_env import version_tuple

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """The serialized engine, and the parser-made tensors an implicit-INT8 cache had no scale for."""

    engine: bytes
    unscaled: tuple[str, ...] = ()


def apply_plan(
    trt: Any,
    plan: BuildPlan,
    onnx_path: Path,
    *,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None,
    logger: Any = None,
) -> bytes:
    """Parse `onnx_path`, configure the builder as `plan` says, build; returns the serialized engine."""
    return run_build(trt, plan, onnx_path, calibration_batches=calibration_batches, logger=logger).engine


def run_build(
    trt: Any,
    plan: BuildPlan,
    onnx_path: Path,
    *,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None,
    logger: Any = None,
) -> BuildResult:
    """`apply_plan`, also returning what the pre-build coverage check found."""
    logger = logger or trt.Logger(trt.Logger.VERBOSE if log.isEnabledFor(logging.DEBUG) else trt.Logger.WARNING)
    builder: trt_api.Builder = trt.Builder(logger)
    network = _parse(trt, builder, plan, onnx_path, logger)
    config = _configure(trt, builder, plan)
    first_profile = _add_profiles(builder, config, plan)
    _set_timing_cache(config, plan)
    calibrator: Any = None  # stays referenced here until the build is done
    unscaled: list[str] = []
    if plan.calibrator != "none":  # TensorRT 10 implicit INT8 only (builder_plan refuses it on 11)
        calibrator, unscaled = _attach_calibrator(trt, plan, network, config, first_profile, calibration_batches)

    log.info("building %s with TensorRT %s (this can take minutes)", plan.variant, plan.tensorrt_version)
    engine = builder.build_serialized_network(network, config)
    if calibrator is not None:
        calibrator.raise_if_failed()  # even when TensorRT built an engine: it may have seen part of the data
    del calibrator
    if engine is None:
        raise GeneratorError(
            "TensorRT could not build the engine: the TensorRT messages above say why "
            "(rerun with -v for more); `reproduce.sh` beside the plan has the trtexec equivalent",
            where=f"variant {plan.variant}",
        )
    atomic_write_bytes(plan.timing_cache, bytes(config.get_timing_cache().serialize()))
    return BuildResult(bytes(engine), tuple(unscaled))


def _parse(trt: Any, builder: trt_api.Builder, plan: BuildPlan, onnx_path: Path, logger: Any) -> trt_api.INetworkDefinition:
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(_member(trt, "NetworkDefinitionCreationFlag", name))
    network = builder.create_network(flags)
    parser: trt_api.OnnxParser = trt.OnnxParser(network, logger)
    parsed = parser.parse_from_file(str(onnx_path))
    if not parsed or parser.num_errors:
        raise GeneratorError(parser_error_message(parser), where=onnx_path)
    return network


def _configure(trt: Any, builder: trt_api.Builder, plan: BuildPlan) -> trt_api.IBuilderConfig:
    config = builder.create_builder_config()
    for name in plan.builder_flags:
        config.set_flag(_member(trt, "BuilderFlag", name))
    for pool, size in plan.memory_pools:
        config.set_memory_pool_limit(_member(trt, "MemoryPoolType", pool), size)
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    if plan.hardware_compatibility is not None:
        config.hardware_compatibility_level = _member(trt, "HardwareCompatibilityLevel", plan.hardware_compatibility)
    config.profiling_verbosity = _member(trt, "ProfilingVerbosity", plan.profiling_verbosity)
    return config


def _add_profiles(builder: trt_api.Builder, config: trt_api.IBuilderConfig, plan: BuildPlan) -> Any:
    first_profile = None
    for shapes in plan.profiles:
        profile = builder.create_optimization_profile()
        for tensor in shapes:
            profile.set_shape(tensor.name, tensor.min, tensor.opt, tensor.max)
        config.add_optimization_profile(profile)
        if first_profile is None:  # not `or`: profiles define __bool__ (validity)
            first_profile = profile
    return first_profile


def _set_timing_cache(config: trt_api.IBuilderConfig, plan: BuildPlan) -> None:
    previous = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
    if not config.set_timing_cache(config.create_timing_cache(previous), ignore_mismatch=False):
        log.warning("timing cache %s is from another TensorRT or GPU: starting a new one", plan.timing_cache)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _attach_calibrator(
    trt: Any, plan: BuildPlan, network: trt_api.INetworkDefinition, config: trt_api.IBuilderConfig,
    first_profile: Any, batches: Iterable[Mapping[str, np.ndarray]] | None,
) -> tuple[Any, list[str]]:
    """The calibrator, checked against the parsed network before TensorRT sees it."""
    where = f"variant {plan.variant}"
    unscaled: list[str] = []
    if plan.calibrator == "cache":
        cache_file, cache, header = _read_cache(plan)
        unscaled = check_cache_coverage(network, set(header.amax), where=f"{where}: {cache_file}")
        calibrator = cache_calibrator(trt, header.algorithm, cache)
    else:
        if batches is None:
            raise GeneratorError("build.trt_calibrates needs calibration data; none was given to the build", where=where)
        opt = {t.name: t.opt for t in plan.profiles[0]} if plan.profiles else {}
        calibrator = data_calibrator(
            trt, plan.calibration_algorithm or "EntropyCalibration2", batches, opt_shapes=opt,
            write_cache=plan.calibration_cache,
        )
        check_calibration_batch(network_inputs(network), calibrator.feeder.peek(), opt, where=where)
    config.int8_calibrator = calibrator
    if first_profile is not None:
        config.set_calibration_profile(first_profile)
    return calibrator, unscaled


def _member(trt: Any, enum: str, name: str) -> Any:
    """trt.<enum>.<name>, or a user error naming the TensorRT version that lacks it."""
    try:
        return getattr(getattr(trt, enum), name)
    except AttributeError:
        raise GeneratorError(
            f"TensorRT {trt.__version__} has no {enum}.{name}: remove the spec setting that needs it or use "
            "another TensorRT (see docs/gpu.md)"
        ) from None


def parser_error_message(parser: trt_api.OnnxParser) -> str:
    """One line: each parser error with its node index, name and operator, as TensorRT reports them."""
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        node = f"node {error.node()}"
        name = getattr(error, "node_name", None)  # absent before TensorRT 10
        operator = getattr(error, "node_operator", None)
        if name is not None and operator is not None and (name() or operator()):
            node += f" ({name() or '?'}: {operator() or '?'})"
        errors.append(f"{node}: {error.desc()}")
    detail = "; ".join(errors) if errors else "no details (is it a valid ONNX file?)"
    return (
        f"TensorRT's ONNX parser rejected the model: {detail}. Check the operator against TensorRT's "
        "supported ONNX operators, or simplify the model (e.g. onnxsim) and re-export"
    )


def _read_cache(plan: BuildPlan) -> tuple[Path, bytes, CalibrationCache]:
    """Our calibration cache: its path, bytes and parsed header (refused when for another TensorRT)."""
    assert plan.calibration_cache is not None  # builder_plan guarantees it in cache mode
    try:
        cache = plan.calibration_cache.read_bytes()
    except OSError:
        raise GeneratorError("calibration cache missing: run `trgen calibrate` first", where=plan.calibration_cache) from None
    return plan.calibration_cache, cache, check_cache_header(cache, plan.tensorrt_version, where=plan.calibration_cache)


def check_cache_header(cache: bytes, tensorrt_version: str, *, where: Path) -> CalibrationCache:
    """Our cache, parsed; refused when written for another TensorRT (which would silently ignore it)."""
    parsed = parse_cache(cache.decode("utf-8", errors="replace"), where=where)
    major, minor, patch = version_tuple(tensorrt_version)
    installed = major * 10000 + minor * 100 + patch
    if parsed.version != installed:
        raise GeneratorError(
            f"the calibration cache is for TensorRT {parsed.version} but {tensorrt_version} ({installed}) is "
            "installed, and TensorRT ignores caches of other versions: rerun `trgen calibrate --force` here",
            where=where,
        )
    return parsed
