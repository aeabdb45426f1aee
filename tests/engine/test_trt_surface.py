"""The recording double and trgen's TensorRT Protocols must match the real API (the newest tensorrt-stubs).

Without this, a test double could accept a call that real TensorRT would reject (a misspelt method,
a wrong keyword), and every other build test would pass while the real build fails. The API comes
from the committed index of the newest tensorrt-stubs (stub_index.py), so these tests run in the
plain test run. No tensorrt-stubs for 11.x exist (PyPI's newest is 10.13.0.35.1): the 11.x double is
checked against the same index (everything it has exists in TensorRT) and, separately, for lacking
what 11.0 removed (shared/reference/tensorrt-int8.md, checked against the 11.0 binding wheels).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from generator.engine import trt_api
from tests.engine import stub_index
from tests.engine.trt_double import make_trt

CONSTRUCTED = {  # trgen calls these constructors (calibrator bases through the subclass __init__)
    "Logger", "Builder", "OnnxParser", "Runtime", "IInt8EntropyCalibrator2", "IInt8EntropyCalibrator", "IInt8MinMaxCalibrator",
}
ENUMS = {
    "BuilderFlag", "NetworkDefinitionCreationFlag", "MemoryPoolType", "HardwareCompatibilityLevel", "TensorIOMode",
    "DataType", "LayerType", "ProfilingVerbosity", "LayerInformationFormat",
}


def _stubs() -> dict[str, stub_index.Members]:
    return stub_index.stub_classes()


def test_the_index_is_of_the_newest_stubs_and_keeps_what_trgen_relies_on() -> None:
    index = stub_index.newest_index()
    assert index["version"] == "10.13.0.35.1"  # newest on PyPI (`pip index versions tensorrt-stubs`); see .ci/run
    assert {"Builder", "EngineInspector", "IInt8EntropyCalibrator2", "INetworkDefinition"} <= set(index["classes"])
    assert index["classes"]["EngineInspector"]["get_engine_information"] == [[["format"], 1]]


@pytest.mark.skipif(stub_index.stubs_version(stub_index.STUBS) is None, reason="tensorrt-stubs not in .stubs (.ci/run installs them)")
def test_the_committed_index_matches_the_stubs() -> None:
    """Where the stubs are installed (CI), the committed index must be exactly what they say."""
    fresh = stub_index.build_index(stub_index.STUBS)
    committed = stub_index.HERE / f"tensorrt_stubs_{fresh['version']}.json"
    assert committed.is_file(), f"no index for the installed stubs {fresh['version']}: run `python -m tests.engine.stub_index`"
    assert committed.read_text(encoding="utf-8") == stub_index.dump_index(fresh)


def _public(cls: type) -> dict[str, Any]:
    return {k: v for k, v in vars(cls).items() if not k.startswith("_")}


def _public_with_bases(cls: type) -> dict[str, Any]:
    """Public members defined on the class or its double-made bases (not on `object`)."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        members.update(_public(klass))
    return members


def _params(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)[1:]  # without self


def _check_member(stub_class: str, name: str, value: Any) -> list[str]:
    members = _stubs()[stub_class]
    if name not in members:
        return [f"{stub_class}.{name} does not exist in TensorRT"]
    overloads = members[name]
    if inspect.isfunction(value) and overloads is not None and not _matches(_params(value), overloads):
        return [f"{stub_class}.{name}{tuple(_params(value))} matches no TensorRT signature {overloads}"]
    return []


def _matches(params: list[str], overloads: list[stub_index.Overload]) -> bool:
    """Same names in the same order; trailing TensorRT parameters may be left out where they have defaults."""
    return any(names[: len(params)] == params and len(params) >= required for names, required in overloads)


@pytest.mark.parametrize("version", ["10.13.0.35", "11.0.0.9"])
def test_every_double_member_exists_in_tensorrt(version: str) -> None:
    trt = make_trt(version)
    problems = [f"tensorrt.{n} does not exist" for n in vars(trt) if not n.startswith("_") and n not in stub_index.package_names()]
    for name, cls in vars(trt).items():
        if name.startswith("_") or not isinstance(cls, type):
            continue
        assert name in _stubs(), f"{name} is not a TensorRT class"
        for member, value in _public_with_bases(cls).items():
            problems += _check_member(name, member, value)
        if name in CONSTRUCTED:
            stub_inits = _stubs()[name].get("__init__") or [([], 0)]
            if not _matches(_params(cls.__init__), stub_inits):
                problems.append(f"{name}.__init__{tuple(_params(cls.__init__))} matches no TensorRT signature {stub_inits}")
        for attribute in getattr(cls, "_settable", ()):
            problems += _check_member(name, attribute, None)
    assert problems == []


def test_double_enums_use_tensorrt_member_names_and_values() -> None:
    trt = make_trt()
    for enum in ENUMS:
        stub = _stubs()[enum]
        for member, value in _public(getattr(trt, enum)).items():
            assert member in stub, f"{enum}.{member} does not exist in TensorRT"
            assert value.name == member


def test_tensorrt_11_double_lacks_the_removed_weak_typing_api() -> None:
    trt = make_trt("11.0.0.9")
    assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(trt.BuilderFlag, "INT8")
    assert not hasattr(trt, "IInt8EntropyCalibrator2")
    with pytest.raises(AttributeError):
        trt.Builder(trt.Logger()).create_builder_config().int8_calibrator = object()


def test_trgen_protocols_match_tensorrt() -> None:
    problems = []
    for name, proto in vars(trt_api).items():
        if not (isinstance(proto, type) and getattr(proto, "_is_protocol", False)) or name == "Protocol":
            continue
        assert name in _stubs(), f"trt_api.{name} is not a TensorRT class"
        members = {**_public(proto), **dict.fromkeys(getattr(proto, "__annotations__", {}))}
        for member, value in members.items():
            problems += _check_member(name, member, value)
    assert problems == []
