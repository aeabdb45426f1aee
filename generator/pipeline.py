"""The main job, one stage after another: spec -> calibration -> artifacts -> repository -> report.

Each function here takes the previous stage's typed result and returns the next one, so a reader can
follow one model from YAML to report in this file. Stages skip work whose inputs did not change
(calibration and engine manifests), so `trgen run` twice is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import Artifact
from .errors import GeneratorError
from .spec import ResolvedVariant, Spec

if TYPE_CHECKING:  # stage result types, imported lazily at run time
    from .measure.bench import BenchResult
    from .measure.compare import ComparisonReport
    from .render import Repository

log = logging.getLogger("trgen")


def select(spec: Spec, model: str | None = None) -> list[ResolvedVariant]:
    """The spec's variants, optionally of one model (unknown model names are a user error)."""
    variants = spec.resolved()
    if model is None:
        return variants
    chosen = [rv for rv in variants if rv.model.name == model]
    if not chosen:
        known = ", ".join(m.name for m in spec.models)
        raise GeneratorError(f"no model named {model!r} in the spec (it has: {known})")
    return chosen


def source_model(rv: ResolvedVariant, *, force: bool = False, progress: bool = True) -> Path:
    """Stage 1-2: the ONNX file a variant is built from: FP32 as given, or calibrated Q/DQ INT8."""
    if rv.precision != "int8":
        return rv.model.onnx
    from .calibrate import calibrate_variant
    from .quantize import quantize_variant

    calibration = calibrate_variant(rv, force=force, progress=progress)
    return quantize_variant(rv, calibration, progress=progress).path


def build_artifacts(
    spec: Spec, *, model: str | None = None, force: bool = False, progress: bool = True
) -> dict[str, Artifact]:
    """Stage 3: one deployable model file per variant (ONNX for onnxruntime targets, plans for TensorRT)."""
    from .build import build_variant

    artifacts: dict[str, Artifact] = {}
    for rv in select(spec, model):
        log.info("[%s] preparing %s %s", rv.name, rv.precision, rv.target)
        artifacts[rv.name] = build_variant(rv, source_model(rv, force=force, progress=progress), force=force)
    return artifacts


def prepare_repository(
    spec: Spec, *, repository: Path | None = None, force: bool = False, progress: bool = True
) -> "Repository":
    """Stages 1-4: calibrate, build, render the whole repository of a spec (validated before the swap)."""
    from .render import render_repository

    repo = render_repository(spec, build_artifacts(spec, force=force, progress=progress), repository)
    log.info("repository %s: %s (validated)", repo.path, ", ".join(repo.models))
    return repo


@dataclass
class RunResult:
    """Everything `trgen run` produced; `passed` gates CI on the accuracy comparison."""

    repository: "Repository"
    comparison: "ComparisonReport | None"
    bench: "Sequence[BenchResult]" = field(default_factory=list)
    report_dir: Path | None = None

    @property
    def passed(self) -> bool:
        return self.comparison is None or bool(self.comparison)


Step = Callable[[str], None]
