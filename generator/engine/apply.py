"""`apply_plan(trt, plan, onnx_path) -> bytes`: a BuildPlan turned into TensorRT calls, one to one.

Nothing here decides anything (that is `plan.builder_plan`); this module only makes the calls, so
the tests can run it against a recording double of the `tensorrt` module and compare the call log
with what the plan says. The timing cache is read before and written after every build, so later
builds (other variants, other runs) reuse the tactic timings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..calibrate.cache import CalibrationCache, parse_cache
from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from . import trt_api
from .calibrator import make_calibrator
from .plan import BuildPlan
from .tensorrt_env import version_tuple

log = logging.getLogger(__name__)


def apply_plan(
    trt: Any,
    plan: BuildPlan,
    onnx_path: Path,
    *,
    calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None,
    logger: Any = None,
) -> bytes:
    """Parse `onnx_path`, configure the builder as `plan` says, build; returns the serialized engine."""
    logger = logger or trt.Logger(trt.Logger.VERBOSE if log.isEnabledFor(logging.DEBUG) else trt.Logger.WARNING)
    builder: trt_api.Builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(_member(trt, "NetworkDefinitionCreationFlag", name))
    network: trt_api.INetworkDefinition = builder.create_network(flags)
    parser: trt_api.OnnxParser = trt.OnnxParser(network, logger)
    parsed = parser.parse_from_file(str(onnx_path))
    if not parsed or parser.num_errors:
        raise GeneratorError(parser_error_message(parser), where=onnx_path)

    config = builder.create_builder_config()
    for name in plan.builder_flags:
        config.set_flag(_member(trt, "BuilderFlag", name))
    for pool, size in plan.memory_pools:
        config.set_memory_pool_limit(_member(trt, "MemoryPoolType", pool), size)
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    if plan.hardware_compatibility is not None:
        config.hardware_compatibility_level = _member(trt, "HardwareCompatibilityLevel", plan.hardware_compatibility)

    first_profile = None
    for shapes in plan.profiles:
        profile = builder.create_optimization_profile()
        for tensor in shapes:
            profile.set_shape(tensor.name, tensor.min, tensor.opt, tensor.max)
        config.add_optimization_profile(profile)
        if first_profile is None:  # not `or`: profiles define __bool__ (validity)
            first_profile = profile

    previous = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
    if not config.set_timing_cache(config.create_timing_cache(previous), ignore_mismatch=False):
        log.warning("timing cache %s is from another TensorRT or GPU: starting a new one", plan.timing_cache)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    calibrator = None  # kept referenced here until the build is done
    if plan.calibrator != "none":  # TensorRT 10 implicit INT8 only (builder_plan refuses it on 11)
        calibrator = _calibrator(trt, plan, calibration_batches)
        config.int8_calibrator = calibrator
        if first_profile is not None:
            config.set_calibration_profile(first_profile)

    log.info("building %s with TensorRT %s (this can take minutes)", plan.variant, plan.tensorrt_version)
    engine = builder.build_serialized_network(network, config)
    del calibrator
    if engine is None:
        raise GeneratorError(
            "TensorRT could not build the engine: the TensorRT messages above say why "
            "(rerun with -v for more); `reproduce.sh` beside the plan has the trtexec equivalent",
            where=f"variant {plan.variant}",
        )
    atomic_write_bytes(plan.timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(engine)


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


def _calibrator(trt: Any, plan: BuildPlan, batches: Iterable[Mapping[str, np.ndarray]] | None) -> Any:
    if plan.calibrator == "cache":
        assert plan.calibration_cache is not None  # builder_plan guarantees it
        try:
            cache = plan.calibration_cache.read_bytes()
        except OSError:
            raise GeneratorError(
                "calibration cache missing: run `trgen calibrate` first", where=plan.calibration_cache
            ) from None
        header = check_cache_header(cache, plan.tensorrt_version, where=plan.calibration_cache)
        return make_calibrator(trt, algorithm=header.algorithm, cache=cache)
    if batches is None:
        raise GeneratorError(
            "build.trt_calibrates needs calibration data; none was given to the build", where=f"variant {plan.variant}"
        )
    opt = {t.name: t.opt for t in plan.profiles[0]} if plan.profiles else {}
    return make_calibrator(
        trt, algorithm=plan.calibration_algorithm or "EntropyCalibration2", batches=batches, opt_shapes=opt,
        write_cache=plan.calibration_cache,
    )


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
