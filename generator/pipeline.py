"""The main job, one stage after another: spec -> calibration -> artifacts -> repository -> report.

Each function here takes the previous stage's typed result and returns the next one, so a reader can
follow one model from YAML to report in this file. Stages skip work whose inputs did not change
(calibration and engine manifests), so `trgen run` twice is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import Artifact
from .errors import GeneratorError, RuntimeFailure
from .spec import ResolvedVariant, Spec

if TYPE_CHECKING:  # stage result types, imported lazily at run time
    from .calibrate import CalibrationResult
    from .quantize import QuantizedModel
    from .measure.bench import BenchResult
    from .measure.compare import ComparisonReport
    from .measure.report import ReportPaths
    from .measure.speed import SpeedCheck
    from .render import Repository
    from .serve import ServerHandle

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


def calibrate(rv: ResolvedVariant, *, force: bool = False, progress: bool = True) -> "CalibrationResult":
    """Stage 1: the variant's thresholds, on the tensors its quantization needs."""
    from .calibrate import calibrate_variant
    from .calibrate.run import prepare_variant
    from .quantize import calibration_tensors
    from .signature import load_onnx

    with prepare_variant(rv, force=force) as prepared:  # BatchNorm and constants folded, activations fused (issue 12)
        model = load_onnx(prepared)
        return calibrate_variant(
            rv, calibration_tensors(rv, model), model=model, model_path=prepared, force=force, progress=progress
        )


def source_model(rv: ResolvedVariant, *, force: bool = False, progress: bool = True) -> "Path | QuantizedModel":
    """Stages 1-2: what a variant is built from: the FP32 ONNX as given, or the calibrated Q/DQ INT8 model."""
    if rv.precision != "int8":
        return rv.model.onnx
    from .quantize import quantize_variant

    return quantize_variant(rv, calibrate(rv, force=force, progress=progress), progress=progress)


def build_artifacts(
    spec: Spec, *, model: str | None = None, force: bool = False, progress: bool = True,
    variants: Sequence[str] | None = None, tune: bool = False,
) -> dict[str, Artifact]:
    """Stage 3: one deployable model file per variant (ONNX for onnxruntime targets, plans for TensorRT).

    `model` keeps one model's variants, `variants` only the variants of these names. `tune` runs
    the local serving sweep for Triton settings the spec leaves unset (measure/sweep.py, issue 12).
    """
    from .engine import build_variant

    artifacts: dict[str, Artifact] = {}
    for rv in select(spec, model):
        if variants is not None and rv.name not in variants:
            continue
        log.info("[%s] preparing %s %s", rv.name, rv.precision, rv.target)
        artifacts[rv.name] = build_variant(rv, source_model(rv, force=force, progress=progress), force=force)
        if tune:
            artifacts[rv.name] = _tuned(rv, artifacts[rv.name])
    return artifacts


def _tuned(rv: ResolvedVariant, artifact: Artifact) -> Artifact:
    """The artifact with the sweep's serving defaults attached (unchanged when the spec sets them all)."""
    import dataclasses

    from .measure.sweep import serving_defaults

    try:
        chosen = serving_defaults(rv, artifact)
    except GeneratorError as exc:  # e.g. no data to time it on: keep the renderer's defaults
        log.info("%s: no serving sweep (%s)", rv.name, exc.message)
        return artifact
    return artifact if chosen is None else dataclasses.replace(artifact, serving_defaults=chosen.hints())


def speed_checks(spec: Spec, artifacts: "dict[str, Artifact]", *, model: str | None = None) -> "list[SpeedCheck]":
    """Stage 3b: each built INT8 variant on an onnxruntime target timed against its FP32 sibling (issue 12)."""
    from .measure.speed import check_speed, speed_pairs

    checks = []
    for int8, fp32 in speed_pairs(select(spec, model)):
        if int8.name in artifacts and fp32.name in artifacts:
            checks.append(check := check_speed(int8, fp32, artifacts))
            (log.info if check.passed else log.error)("%s", check.summary())
    return checks


def prepare_repository(
    spec: Spec, *, repository: Path | None = None, force: bool = False, progress: bool = True, tune: bool = False
) -> "Repository":
    """Stages 1-4: calibrate, build, render the whole repository of a spec (validated before the swap).

    `tune`: serving defaults from a local sweep where the spec sets none (see `build_artifacts`).
    """
    from .render import render_repository

    repo = render_repository(spec, build_artifacts(spec, force=force, progress=progress, tune=tune), repository)
    log.info("repository %s: %s (validated)", repo.path, ", ".join(repo.models))
    return repo


@contextmanager
def serving(
    spec: Spec, names: Sequence[str], *, url: str | None = None, force: bool = False, progress: bool = True,
    repository: "Repository | None" = None,
) -> Iterator["ServerHandle"]:
    """Stages 4-5, the one serve path of run, compare and bench: a handle on a server that serves `names`.

    With `url`, that (external) server, which must already serve them; otherwise the spec's repository
    is prepared (calibrate, build, render; or `repository` when the caller already has it) and the
    bundled tritonserver serves it on 127.0.0.1 until the block ends.
    """
    from .serve import EmbeddedServer, ServerHandle

    if url is not None:
        yield ServerHandle.external(url, list(names))
        return
    repo = repository if repository is not None else prepare_repository(spec, force=force, progress=progress)
    with EmbeddedServer(repo.path, list(names)) as handle:
        yield handle


def compare(spec: Spec, *, url: str | None = None, model: str | None = None, progress: bool = True) -> "ComparisonReport":
    """`trgen compare`: INT8 against FP32 on a live server (external with `url`, else the bundled one)."""
    from .measure.compare import comparison_pairs, compare_spec

    pairs, skipped = comparison_pairs(spec, model=model, embedded=url is None)
    names = list(dict.fromkeys(rv.name for pair in pairs for rv in pair))
    with serving(spec, names, url=url, progress=progress) as handle:
        return compare_spec(handle, pairs, skipped=skipped, progress=progress)


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
    report_dir: Path | None = None, progress: bool = True, only: Sequence[str] | None = None,
) -> RunResult:
    """The main job: calibrate -> build -> render -> validate -> serve -> compare -> bench -> report.

    With `url`, the comparison and load run against that (external) server, which must serve the
    rendered repository; otherwise the bundled tritonserver serves it on 127.0.0.1. If the server
    dies during the load test or the user presses Ctrl-C, the report is still written with the
    comparison and the levels measured so far, and `RuntimeFailure` (exit 4) says where it is.
    `only` (variant names, from --model / --variant) limits what is compared and load-tested.
    """
    from .measure.bench import bench_variants
    from .measure.compare import EMBEDDED_TARGETS, comparison_pairs, compare_spec
    from .measure.report import check_report_dir, write_report

    report_dir = report_dir or spec.workdir / "report"
    check_report_dir(report_dir)  # before any work: a folder of the user's is refused, never wiped
    log.info("== 1-4/7 calibrate, quantize, build, render, validate")
    repo = prepare_repository(spec, force=force, progress=progress, tune=True)  # serving sweep: issue 12
    served = [rv for rv in spec.resolved() if url is not None or rv.target in EMBEDDED_TARGETS]
    if not served:
        raise GeneratorError("no variant the bundled server can serve (python-onnxruntime); pass --url of a full Triton")
    pairs, skipped = comparison_pairs(spec, embedded=url is None)
    if only is not None:  # --model / --variant: the repository is whole, the measurements are of these
        pairs = [pair for pair in pairs if any(rv.name in only for rv in pair)]
        wanted = {rv.name for pair in pairs for rv in pair} | set(only)
        served = [rv for rv in served if rv.name in wanted]
    names = [rv.name for rv in served]
    log.info("== 5/7 serve %s", "on " + url if url else "with the bundled tritonserver")
    results: list[BenchResult] = []
    comparison = None
    with serving(spec, names, url=url, repository=repo, progress=progress) as handle:
        log.info("== 6/7 compare INT8 with FP32 on the evaluation set")
        comparison = compare_spec(handle, pairs, skipped=skipped, progress=progress)
        log.info("%s", comparison.summary())
        if bench:
            log.info("== 7/7 load test (%s)", ", ".join(names))
            try:
                bench_variants(handle, served, on_result=results.append, progress=progress)
            except (GeneratorError, KeyboardInterrupt) as exc:  # server died or Ctrl-C: keep what finished
                partial = write_report(report_dir, bench=results, comparison=comparison)
                why = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
                raise RuntimeFailure(
                    f"load test cut short: {why}; partial report with the comparison and {len(results)} "
                    f"completed level(s): {partial.markdown}"
                ) from None
    report = write_report(report_dir, bench=results, comparison=comparison)
    log.info("report: %s", report.markdown)
    return RunResult(repository=repo, comparison=comparison, bench=results, report=report)
