"""A recording double of exactly the TensorRT Python surface trgen calls (10.x and 11.x flavours).

Every class, method, attribute and enum member here mirrors the real API by name and parameter
names; `test_trt_surface.py` checks them against the tensorrt-stubs file so the double cannot drift.
Behaviour follows the real binding, including where it surprises: the parser fills a network of
layers and tensors (`trt_double_network.parse_onnx`), the builder "serializes" a JSON description
(I/O, profiles, the engine inspector's layer list) that `Runtime` deserializes into an engine double.
An attached INT8 calibrator is driven the way TensorRT drives it (cache first, batches only when the
cache is empty), and, like the pybind11 binding, every exception raised in a calibrator callback is
caught, printed to stderr and treated as "no data" / "no cache"; a calibration that got no batch and
no cache fails the build. Layers whose tensors the cache has no scale for fall back to float with only
a printed warning. TensorRT 11 lacks the removed weak-typing API (BuilderFlag.FP16/INT8, calibrators).
Every call is appended to `trt._calls` as (name, args); names starting with '_' are the
double's own plumbing, not API.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

from tests.engine import trt_double_network as net
from tests.engine.trt_double_classes import engine_classes, network_classes

FACTORY = "tests.engine.trt_double:make_trt"  # how trgen's build child process re-creates this double


class _Member:
    """An enum value like pybind11's: has .name, int() gives .value, compares by identity."""

    def __init__(self, owner: str, name: str, value: int) -> None:
        self.name, self.value, self._owner = name, value, owner

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"<{self._owner}.{self.name}: {self.value}>"


def _enum(owner: str, members: dict[str, int]) -> type:
    return type(owner, (), {name: _Member(owner, name, value) for name, value in members.items()})


def make_trt(
    version: str = "10.13.0.35", *, parser_errors: list[tuple[int, str, str, str]] | None = None, crash: str | None = None
) -> Any:
    """A fresh `tensorrt` module double. `parser_errors`: (node, node_name, node_operator, desc) to report.

    `crash`: how build_serialized_network dies, as TensorRT sometimes does: 'segfault' / 'abort' (the
    process is killed by SIGSEGV / SIGABRT after printing a log line) or 'exit' (exits with status 1).
    """
    major = int(version.split(".")[0])
    calls: list[tuple[str, tuple[Any, ...]]] = []

    def record(name: str, *args: Any) -> None:
        calls.append((name, args))

    builder_flags = {"FP16": 0, "INT8": 1, "VERSION_COMPATIBLE": 13}
    network_flags = {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    if major >= 11:  # removed in 11 (STRONGLY_TYPED stays, deprecated and ignored)
        del builder_flags["FP16"], builder_flags["INT8"], network_flags["EXPLICIT_BATCH"]
    BuilderFlag = _enum("BuilderFlag", builder_flags)
    NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", network_flags)
    MemoryPoolType = _enum("MemoryPoolType", {"WORKSPACE": 0})
    HardwareCompatibilityLevel = _enum("HardwareCompatibilityLevel", {"NONE": 0, "AMPERE_PLUS": 1, "SAME_COMPUTE_CAPABILITY": 2})
    TensorIOMode = _enum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    DataType = _enum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "BF16": 7, "INT64": 8})
    LayerType = _enum("LayerType", {
        "CONVOLUTION": 0, "ACTIVATION": 2, "POOLING": 3, "DECONVOLUTION": 7, "ELEMENTWISE": 9, "UNARY": 11,
        "SHUFFLE": 13, "REDUCE": 14, "MATRIX_MULTIPLY": 17, "CONSTANT": 19, "IDENTITY": 20, "CAST": 1,
        "SOFTMAX": 6, "CONCATENATION": 8, "QUANTIZE": 32, "DEQUANTIZE": 33, "PLUGIN_V3": 46,
    })
    ProfilingVerbosity = _enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2})
    LayerInformationFormat = _enum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})

    class Logger:
        WARNING = _Member("Severity", "WARNING", 2)
        VERBOSE = _Member("Severity", "VERBOSE", 4)

        def __init__(self, min_severity: Any = None) -> None:
            record("Logger", min_severity)

    class ParserError:
        def __init__(self, node: int, name: str, operator: str, desc: str) -> None:
            self._values = (node, name, operator, desc)

        def node(self) -> int:
            return self._values[0]

        def node_name(self) -> str:
            return self._values[1]

        def node_operator(self) -> str:
            return self._values[2]

        def desc(self) -> str:
            return self._values[3]

    ITensor, ILayer, INetworkDefinition = network_classes(DataType, LayerType)

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            record("OnnxParser", network, logger)
            self._network = network
            self._errors = [ParserError(*e) for e in parser_errors or []]

        @property
        def num_errors(self) -> int:
            return len(self._errors)

        def get_error(self, index: int) -> ParserError:
            return self._errors[index]

        def parse_from_file(self, model: str) -> bool:
            record("OnnxParser.parse_from_file", model)
            self._network._io = net.parse_onnx(model)
            return not self._errors

    class IOptimizationProfile:
        def __init__(self) -> None:
            self._shapes: dict[str, tuple[Any, Any, Any]] = {}

        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            record("IOptimizationProfile.set_shape", input, tuple(min), tuple(opt), tuple(max))
            self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    class ITimingCache:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def serialize(self) -> memoryview:
            return memoryview(self._data + b"+timings")

    class IBuilderConfig:
        _settable = {"builder_optimization_level", "hardware_compatibility_level", "profiling_verbosity"} | (
            {"int8_calibrator"} if major < 11 else set()
        )

        def __init__(self) -> None:
            object.__setattr__(self, "_flags_set", [])
            object.__setattr__(self, "_profiles", [])
            object.__setattr__(self, "_timing_cache", None)
            object.__setattr__(self, "profiling_verbosity", ProfilingVerbosity.LAYER_NAMES_ONLY)
            if major < 11:
                object.__setattr__(self, "int8_calibrator", None)

        def __setattr__(self, name: str, value: Any) -> None:  # pybind objects refuse unknown attributes
            if name not in self._settable:
                raise AttributeError(f"'tensorrt.IBuilderConfig' object has no attribute '{name}'")
            record(f"IBuilderConfig.{name}", value)
            object.__setattr__(self, name, value)

        def set_flag(self, flag: _Member) -> None:
            record("IBuilderConfig.set_flag", flag.name)
            self._flags_set.append(flag.name)

        def set_memory_pool_limit(self, pool: _Member, pool_size: int) -> None:
            record("IBuilderConfig.set_memory_pool_limit", pool.name, pool_size)

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            record("IBuilderConfig.add_optimization_profile", dict(profile._shapes))
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
            record("IBuilderConfig.create_timing_cache", bytes(serialized_timing_cache))
            return ITimingCache(bytes(serialized_timing_cache))

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            record("IBuilderConfig.set_timing_cache", cache._data, ignore_mismatch)
            object.__setattr__(self, "_timing_cache", cache)
            return True

        def get_timing_cache(self) -> ITimingCache:
            return self._timing_cache

        if major < 11:

            def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
                record("IBuilderConfig.set_calibration_profile", dict(profile._shapes))
                return True

    class Builder:
        def __init__(self, logger: Logger) -> None:
            record("Builder", logger)

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            record("Builder.create_network", flags)
            return INetworkDefinition(flags)

        def create_builder_config(self) -> IBuilderConfig:
            record("Builder.create_builder_config")
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> memoryview | None:
            record("Builder.build_serialized_network", network.flags, tuple(config._flags_set))
            if crash is not None:
                _crash(crash)
            strongly = major >= 11 or network.flags & (1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED.value)
            if strongly and {"FP16", "INT8"} & set(config._flags_set):
                return None  # TensorRT rejects precision flags on strongly typed networks
            calibrator = getattr(config, "int8_calibrator", None)
            scales: set[str] | None = None
            if calibrator is not None and "INT8" in config._flags_set:
                scales = _calibrate(calibrator, network._io)
                if scales is None:
                    print("[TRT] [E] Calibration failure occurred with no scaling factors detected.", file=sys.stderr)
                    return None
                missing = net.missing_scales(network._io, scales)
                for name in missing:  # TensorRT's warning, and nothing else
                    print(f"[TRT] [W] Missing scale and zero-point for tensor {name}, expect fall back to "
                          "non-int8 implementation for any layer consuming or producing given tensor", file=sys.stderr)
            profiles = [{k: [list(s) for s in v] for k, v in p._shapes.items()} for p in config._profiles]
            layers = net.engine_layers(network._io, strongly_typed=bool(strongly), flags=set(config._flags_set), scales=scales)
            description = {
                "io": {"inputs": network._io["inputs"], "outputs": network._io["outputs"]}, "profiles": profiles,
                "version_compatible": "VERSION_COMPATIBLE" in config._flags_set, "layers": layers,
                "detailed": config.profiling_verbosity is ProfilingVerbosity.DETAILED,
            }
            return memoryview(json.dumps(description).encode())

    def _callback(calibrator: Any, name: str, *args: Any) -> Any:
        """Call a Python calibrator method the way TensorRT's binding does: exceptions printed, then None."""
        try:
            return getattr(calibrator, name)(*args)
        except Exception as exc:  # the binding catches everything and carries on
            print(f"[TRT] [E] Exception caught in {name}(): {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return None

    def _calibrate(calibrator: Any, io: dict[str, Any]) -> set[str] | None:
        """The tensors that got a scale (None: calibration failed), driving the callbacks like TensorRT."""
        record("calibrator.get_batch_size", _callback(calibrator, "get_batch_size"))
        cache = _callback(calibrator, "read_calibration_cache")
        record("calibrator.read_calibration_cache", cache)
        if cache:  # TensorRT uses the cache and never asks for batches
            text = bytes(cache).decode("utf-8", errors="replace").splitlines()[1:]
            return {line.rsplit(":", 1)[0].strip() for line in text if ":" in line}
        names = [t["name"] for t in io["inputs"]]
        fed = 0
        while _callback(calibrator, "get_batch", names) is not None:
            record("calibrator.get_batch", tuple(names))
            fed += 1
        if fed == 0:
            return None
        _callback(calibrator, "write_calibration_cache", memoryview(b"TRT-100300-EntropyCalibration2\n"))
        return set(io["tensors"])  # TensorRT's own calibration gives every tensor a scale

    IExecutionContext, EngineInspector, ICudaEngine = engine_classes(record, TensorIOMode, DataType, LayerInformationFormat)

    class Runtime:
        engine_host_code_allowed = False

        def __init__(self, logger: Logger) -> None:
            record("Runtime", logger)

        def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
            try:
                description = json.loads(bytes(serialized_engine))
            except ValueError:
                return None
            if description.get("version_compatible") and not self.engine_host_code_allowed:
                return None  # TensorRT refuses to run the embedded lean runtime unless allowed
            return ICudaEngine(description)

    trt = SimpleNamespace(
        __version__=version, _calls=calls, Logger=Logger, Builder=Builder, OnnxParser=OnnxParser, Runtime=Runtime,
        BuilderFlag=BuilderFlag, NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag,
        MemoryPoolType=MemoryPoolType, HardwareCompatibilityLevel=HardwareCompatibilityLevel,
        TensorIOMode=TensorIOMode, DataType=DataType, LayerType=LayerType, ProfilingVerbosity=ProfilingVerbosity,
        LayerInformationFormat=LayerInformationFormat,
        # classes the tests reach through instances, exposed for the surface check
        IBuilderConfig=IBuilderConfig, IOptimizationProfile=IOptimizationProfile, ITimingCache=ITimingCache,
        ICudaEngine=ICudaEngine, ParserError=ParserError, INetworkDefinition=INetworkDefinition,
        ILayer=ILayer, ITensor=ITensor, IExecutionContext=IExecutionContext, EngineInspector=EngineInspector,
        __trgen_factory__=(FACTORY, {"version": version, "parser_errors": parser_errors, "crash": crash}),
    )
    if major < 11:

        class IInt8Calibrator:
            def __init__(self) -> None:
                self._base_initialised = True  # real TensorRT segfaults when a subclass skips this

            def get_batch_size(self) -> int:
                return 1

            def get_batch(self, names: list[str]) -> list[int] | None:
                return None

            def read_calibration_cache(self) -> bytes | None:
                return None

            def write_calibration_cache(self, cache: Any) -> None:
                return None

        for name in ("IInt8EntropyCalibrator2", "IInt8EntropyCalibrator", "IInt8MinMaxCalibrator"):
            setattr(trt, name, type(name, (IInt8Calibrator,), {}))
    return trt


def _crash(how: str) -> None:
    import os
    import signal

    print("[TRT] [I] [MemUsageChange] Init builder kernel library: CPU +0, GPU +0, now: CPU 1024, GPU 512 (MiB)", flush=True)
    print("[TRT] [E] IBuilder::buildSerializedNetwork: Error Code 2: Internal Error (Assertion failed)", file=sys.stderr, flush=True)
    if how == "exit":
        os._exit(1)
    os.kill(os.getpid(), {"segfault": signal.SIGSEGV, "abort": signal.SIGABRT}[how])


def call_names(trt: Any) -> list[str]:
    return [name for name, _ in trt._calls]


def calls_named(trt: Any, name: str) -> list[tuple[Any, ...]]:
    return [args for call, args in trt._calls if call == name]

