"""Typed results that flow between stages: spec -> calibration -> artifacts -> repository -> report.

Each stage module defines its own result type; this module holds the ones several stages share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .signature import Signature


@dataclass(frozen=True)
class Artifact:
    """The deployable model file of one variant, as the build stage produced it.

    `kind` says what Triton loads: an ONNX model (python-onnxruntime / onnxruntime targets) or a
    TensorRT plan. `signature` is read from that very file, so the rendered config matches it.
    `cc_model_files` maps compute capability ('8.0') -> plan file for multi-GPU-architecture builds.
    `serving_defaults`: what a local sweep chose for Triton settings the spec leaves unset
    (`preferred_batch_sizes`, `intra_op_threads`; generator/measure/sweep.py), for the renderer.
    """

    variant: str
    kind: Literal["onnx", "plan"]
    model_file: Path
    signature: Signature
    cc_model_files: tuple[tuple[str, Path], ...] = ()
    serving_defaults: Mapping[str, Any] = field(default_factory=dict)


def cc_plan_name(compute_capability: str) -> str:
    """'8.0' -> 'model_sm80.plan': the build stage writes it, Triton's cc_model_filenames entry names it."""
    return f"model_sm{compute_capability.replace('.', '')}.plan"
