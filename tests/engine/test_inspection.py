"""Engine inspection: a recording double engine's metadata -> the Signature the renderer uses."""

from __future__ import annotations

import json

import pytest

from generator.engine.inspection import deserialize, engine_signature
from generator.errors import GeneratorError
from generator.signature import Signature, TensorSig
from tests.engine.trt_double import make_trt


def engine(trt, description):  # the double's Runtime deserializes its own JSON "plans"
    return deserialize(trt, json.dumps(description).encode(), where="model.plan")


def test_signature_and_profiles_come_from_the_engine() -> None:
    trt = make_trt()
    description = {
        "io": {
            "inputs": [{"name": "input", "dtype": "HALF", "shape": [-1, 1, 28, 28]}],
            "outputs": [{"name": "logits", "dtype": "FLOAT", "shape": [-1, 10]}],
        },
        "profiles": [
            {"input": [[1, 1, 28, 28], [16, 1, 28, 28], [32, 1, 28, 28]]},
            {"input": [[32, 1, 28, 28], [64, 1, 28, 28], [64, 1, 28, 28]]},
        ],
    }
    assert engine_signature(trt, engine(trt, description)) == Signature(
        inputs=(TensorSig("input", "fp16", (-1, 1, 28, 28)),),
        outputs=(TensorSig("logits", "fp32", (-1, 10)),),
        profiles=(
            {"input": ((1, 1, 28, 28), (16, 1, 28, 28), (32, 1, 28, 28))},
            {"input": ((32, 1, 28, 28), (64, 1, 28, 28), (64, 1, 28, 28))},
        ),
    )


def test_static_engines_have_no_profiles() -> None:
    trt = make_trt("11.0.0.9")
    description = {
        "io": {
            "inputs": [{"name": "a", "dtype": "INT64", "shape": [1, 4]}, {"name": "b", "dtype": "BOOL", "shape": [1]}],
            "outputs": [{"name": "y", "dtype": "INT32", "shape": [1, 4]}],
        },
        "profiles": [],
    }
    signature = engine_signature(trt, engine(trt, description))
    assert [(t.name, t.dtype, t.shape) for t in signature.inputs] == [("a", "int64", (1, 4)), ("b", "bool", (1,))]
    assert signature.outputs == (TensorSig("y", "int32", (1, 4)),) and signature.profiles == ()


def test_a_plan_tensorrt_cannot_load_says_to_rebuild() -> None:
    with pytest.raises(GeneratorError, match="trgen build --force"):
        deserialize(make_trt(), b"not a plan", where="model.plan")
