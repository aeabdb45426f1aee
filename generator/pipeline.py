"""The main job, one stage after another: spec -> calibration -> artifacts -> repository -> report.

Each function here takes the previous stage's typed result and returns the next one, so a reader can
follow one model from YAML to report in this file. Stages skip work whose inputs did not change
(calibration and engine manifests), so `trgen run` twice is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import Artifact
from .errors import GeneratorError
from .spec import ResolvedVariant, Spec

if TYPE_CHECKING:  # stage result types, imported lazily at run time
    from .measure.bench import BenchResult
    from .measure.compare import ComparisonReport
    from .measure.report import ReportPaths
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
    bench: "Sequence[BenchResult]"
    report: "ReportPaths"

    @property
    def passed(self) -> bool:
        return self.comparison is None or bool(self.comparison)


def run(
    spec: Spec, *, url: str | None = None, force: bool = False, bench: bool = True,
    report_dir: Path | None = None, progress: bool = True,
) -> RunResult:
    """The main job: calibrate -> build -> render -> validate -> serve -> compare -> bench -> report.

    With `url`, the comparison and load run against that (external) server, which must serve the
    rendered repository; otherwise the bundled tritonserver serves it on 127.0.0.1. If the server
    dies during the load test, the report is still written with the windows measured so far.
    """
    from .measure.bench import BenchAborted, bench_variants
    from .measure.compare import EMBEDDED_TARGETS, comparison_pairs, compare_spec
    from .measure.report import write_report
    from .serve import EmbeddedServer, ServerHandle

    report_dir = report_dir or spec.workdir / "report"
    log.info("== 1-4/7 calibrate, quantize, build, render, validate")
    repo = prepare_repository(spec, force=force, progress=progress)
    served = [rv for rv in spec.resolved() if url is not None or rv.target in EMBEDDED_TARGETS]
    if not served:
        raise GeneratorError("no variant the bundled server can serve (python-onnxruntime); pass --url of a full Triton")
    pairs, skipped = comparison_pairs(spec, embedded=url is None)
    names = [rv.name for rv in served]
    log.info("== 5/7 serve %s", "on " + url if url else "with the bundled tritonserver")
    server = nullcontext(ServerHandle.external(url, names)) if url else EmbeddedServer(repo.path, names)
    results: list[BenchResult] = []
    comparison = None
    with server as handle:
        log.info("== 6/7 compare INT8 with FP32 on the evaluation set")
        comparison = compare_spec(handle, pairs, skipped=skipped, progress=progress)
        log.info("%s", comparison.summary())
        if bench:
            log.info("== 7/7 load test (%s)", ", ".join(names))
            try:
                results = bench_variants(handle, served, on_result=results.append, progress=progress)
            except BenchAborted:
                write_report(report_dir, bench=results, comparison=comparison)
                raise
    report = write_report(report_dir, bench=results, comparison=comparison)
    log.info("report: %s", report.markdown)
    return RunResult(repository=repo, comparison=comparison, bench=results, report=report)
