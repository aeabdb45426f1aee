"""Specs around the tiny CNN (tests/conftest.py) with whatever variants a stage test needs (the `make_spec` fixture)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from generator.spec import ResolvedVariant, Spec, load_spec

CALIBRATION = "calibration: {method: entropy, samples: 32, batch_size: 8, data: {kind: arrays, path: data.npz}}"

SpecFactory = Callable[..., Spec]


@pytest.fixture
def make_spec(tmp_path: Path, tiny_onnx: Path) -> SpecFactory:
    """make_spec(variants_yaml, max_batch_size=8, profiles_yaml=None) -> Spec (tiny CNN, random data)."""
    rng = np.random.default_rng(3)
    np.savez(
        tmp_path / "data.npz",
        input=rng.random((48, 1, 8, 8), dtype=np.float32),
        labels=rng.integers(0, 4, 48).astype(np.int64),
    )

    def make(variants: str, *, max_batch_size: int = 8, profiles: str | None = None) -> Spec:
        lines = [
            "version: 1",
            "workdir: build",
            "models:",
            "  - name: tiny",
            f"    onnx: {tiny_onnx.name}",
            f"    max_batch_size: {max_batch_size}",
            "    evaluation: {data: {kind: arrays, path: data.npz, labels: labels}, batch_size: 16}",
        ]
        if profiles:
            lines.append(f"    profiles: {profiles}")
        lines.append("    variants:")
        lines += [f"      - {v}" for v in variants.strip().splitlines()]
        path = tmp_path / "spec.yaml"
        path.write_text("\n".join(lines) + "\n")
        return load_spec(path)

    return make


def only(spec: Spec) -> ResolvedVariant:
    (rv,) = spec.resolved()
    return rv
