"""Fixtures for the render stage: tiny real ONNX models, specs built in memory, artifacts for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generator.artifacts import Artifact
from generator.signature import Signature, read_onnx_signature
from generator.spec import ResolvedVariant, Spec
from tests.conftest import make_tiny_cnn

# the tiny CNN of tests/conftest.py: input [batch, 1, 8, 8] -> logits [batch, 4]
PROFILE = {"input": {"min": [1, 1, 8, 8], "opt": [4, 1, 8, 8], "max": [8, 1, 8, 8]}}
LABELS = "zero\none\ntwo\nthree\n"


def identity_onnx(path: Path, shape: list[Any], *, elem_type: int = 1, names: tuple[str, str] = ("x", "y")) -> Path:
    """A one-node Identity model: input names[0] -> output names[1], both of `shape` and `elem_type`."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Identity", [names[0]], [names[1]])],
        "identity",
        [helper.make_tensor_value_info(names[0], elem_type, shape)],
        [helper.make_tensor_value_info(names[1], elem_type, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def plan_signature(sig: Signature, profile_max: int = 8) -> Signature:
    """The engine signature TensorRT would report for the tiny CNN with one profile."""
    hi = (profile_max, 1, 8, 8)
    return Signature(sig.inputs, sig.outputs, profiles=({"input": ((1, 1, 8, 8), (4, 1, 8, 8), hi)},))


class Project:
    """A spec around the tiny CNN in a tmp folder, variants and settings chosen per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.onnx = make_tiny_cnn(root / "tiny.onnx")
        (root / "labels.txt").write_text(LABELS)

    def spec(self, variants: list[dict[str, Any]] | None = None, **model: Any) -> Spec:
        data: dict[str, Any] = {
            "repository": "repo",
            "models": [
                {
                    "name": "tiny",
                    "onnx": "tiny.onnx",
                    "labels": "labels.txt",
                    "max_batch_size": 8,
                    "profiles": [PROFILE],
                    "variants": variants or [{"precision": "fp32"}],
                    **model,
                }
            ],
        }
        return Spec.model_validate(data, context={"base_dir": self.root, "check_files": True})

    def variant(self, variant: dict[str, Any] | None = None, **model: Any) -> ResolvedVariant:
        return self.spec([variant or {"precision": "fp32"}], **model).resolved()[0]

    def artifact(self, rv: ResolvedVariant, *, profile_max: int = 8, cc: tuple[str, ...] = ()) -> Artifact:
        """An ONNX artifact (the tiny CNN itself), or for TensorRT a plan file with its signature."""
        sig = read_onnx_signature(self.onnx)
        if rv.target != "tensorrt":
            return Artifact(rv.name, "onnx", self.onnx, sig)
        folder = self.root / "engines" / rv.name
        folder.mkdir(parents=True, exist_ok=True)
        plan = folder / "model.plan"
        plan.write_bytes(b"engine bytes of " + rv.name.encode())
        per_cc = []
        for capability in cc:
            path = folder / f"sm{capability}.plan"
            path.write_bytes(b"engine for sm " + capability.encode())
            per_cc.append((capability, path))
        return Artifact(rv.name, "plan", plan, plan_signature(sig, profile_max), tuple(per_cc))

    def artifacts(self, spec: Spec) -> dict[str, Artifact]:
        return {rv.name: self.artifact(rv) for rv in spec.resolved()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def parse() -> Callable[[str], Any]:
    from generator.render.template import parse_config

    return parse_config
