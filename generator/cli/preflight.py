"""The front door: everything decidable before work starts, checked before any command writes a byte.

`trgen check` runs exactly this, so a spec `check` accepts is not refused later by `render` for a
reason `check` could have seen. Checks that need the ONNX model run the renderer's own config code
on the source model's signature (the artifact's inputs and outputs are the source's), so both agree
by construction. Every problem is collected and raised together, one line each.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import GeneratorError, ProblemList, SpecError

if TYPE_CHECKING:
    from ..signature import Signature
    from ..spec import ModelSpec, ResolvedVariant, Spec
    from .common import Selection

log = logging.getLogger("trgen")
Loc = tuple[str | int, ...]
RENDERING = {"render", "run", "compare", "bench", "check"}  # commands that (may) write the repository
NEEDS_EVALUATION = {"run", "compare", "compare-url"}


@dataclass
class Findings:
    """Problems (refuse) and notes (say once) found at the front door, each at file:line."""

    path: Path
    line_of: Callable[[Loc], tuple[int | None, str]]
    problems: list[GeneratorError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def at(self, loc: Loc, message: str) -> SpecError:
        line, name = self.line_of(loc)
        return SpecError(message, file=self.path, line=line, field=name)

    def fail(self, loc: Loc, message: str) -> None:
        self.problems.append(self.at(loc, message))

    def note(self, loc: Loc, message: str) -> None:
        self.notes.append(str(self.at(loc, message)))


def front_door(
    path: Path, *, command: str, trust_code: bool = False, model: str | None = None, variant: str | None = None,
    report_dir: Path | None = None, repository: Path | None = None,
) -> Selection:
    from ..spec.loader import load_spec_located
    from .common import Selection

    spec, line_of = load_spec_located(path, trust_code=trust_code)
    found = Findings(path, line_of)
    chosen = _select(spec, model, variant)
    _check_trust(spec, found, trusted=trust_code or spec.trust_code)
    for m, model_spec in enumerate(spec.models):
        _check_model(spec, m, model_spec, found, command=command)
    if command in RENDERING:
        from ..render.writer import check_repository

        if repository is not None:  # --repository: the flag's folder
            _collect(found, lambda: check_repository(repository))
        else:  # the spec's `repository:` line
            _collect_at(found, ("repository",), lambda: check_repository(spec.repository))
    if report_dir is not None:
        from ..measure.report import check_report_dir

        _collect(found, lambda: check_report_dir(report_dir))
    if found.problems:
        unique = ProblemList(found.problems).problems
        raise unique[0] if len(unique) == 1 else ProblemList(list(unique))
    for line in dict.fromkeys(found.notes):  # said once, like errors: one line each, on stderr
        print(f"trgen: note: {line}", file=sys.stderr)
    _sweep(spec, report_dir, repository)
    return Selection(spec=spec, variants=tuple(chosen))


def _collect(found: Findings, check: Callable[[], None]) -> None:
    try:
        check()
    except ProblemList as many:
        found.problems.extend(many.problems)
    except GeneratorError as exc:
        found.problems.append(exc)


def _select(spec: Spec, model: str | None, variant: str | None) -> list[ResolvedVariant]:
    variants = spec.resolved()
    if model is not None and model not in {m.name for m in spec.models}:
        known = ", ".join(m.name for m in spec.models)
        hint = " (that is a variant name: use --variant)" if any(rv.name == model for rv in variants) else ""
        raise GeneratorError(f"--model {model!r}: the spec has no such model{hint} (models: {known})")
    if variant is not None and variant not in {rv.name for rv in variants}:
        known = ", ".join(rv.name for rv in variants)
        raise GeneratorError(f"--variant {variant!r}: the spec has no such variant (variants: {known})")
    return [rv for rv in variants if model in (None, rv.model.name) and variant in (None, rv.name)]


def data_sources(spec: Spec) -> list[tuple[Loc, Any]]:
    """Every data block of the spec with its location: calibration data per variant, evaluation per model."""
    out: list[tuple[Loc, Any]] = []
    for m, model in enumerate(spec.models):
        if model.evaluation is not None:
            out.append((("models", m, "evaluation", "data"), model.evaluation.data))
        for v, variant in enumerate(model.variants):
            if variant.calibration is not None:
                out.append((("models", m, "variants", v, "calibration", "data"), variant.calibration.data))
    return out


def callables(spec: Spec) -> list[tuple[Loc, str]]:
    """The `module:function` references a spec would import and run, with where they are written."""
    return [(loc, source.callable) for loc, source in data_sources(spec) if source.kind == "callable"]


def _check_trust(spec: Spec, found: Findings, *, trusted: bool) -> None:
    if trusted:
        return
    for loc, reference in callables(spec):
        found.fail(loc + ("callable",), f"{reference!r} would import and run Python code: pass --trust-code "
                   "(or set trust_code: true in the spec) if you trust this spec")


def _check_model(spec: Spec, m: int, model: ModelSpec, found: Findings, *, command: str) -> None:
    from ..signature import read_onnx_signature

    loc: Loc = ("models", m)
    try:
        signature = read_onnx_signature(model.onnx)
    except GeneratorError:
        return  # already reported by the spec's own checks at the `onnx` line
    plans: dict[str, Any] = {}

    def dry(rv: ResolvedVariant) -> Callable[[], None]:
        return lambda: plans.update(_dry_files(rv, signature))

    for rv in (rv for rv in spec.resolved() if rv.model is model):
        _collect_at(found, loc, dry(rv), model)
        if rv.precision == "int8" and model.evaluation is None:
            message = (f"variant {rv.name} is int8 but the model has no 'evaluation' block: `trgen run` compares "
                       "INT8 with FP32 on it; add one (data with labels, tolerances)")
            (found.fail if command in NEEDS_EVALUATION else found.note)(loc + ("name",), message)
    if plans and not found.problems:  # each config renders: does the repository they make load in Triton?
        from ..render.writer import dry_render

        _collect_at(found, loc, lambda: dry_render(plans, spec.repository))
    classes = _classes(model, signature)
    from ..data.batches import available_samples
    from .data_checks import check_data

    for data_loc, source, samples in _model_sources(model, m):
        findings, _ = check_data(source, signature, classes=classes, samples=samples)
        for message, where in findings:
            found.fail(data_loc + (where,) if where else data_loc, message)
        available = available_samples(source)  # from the file headers (None: not known before reading)
        if samples is not None and available is not None and available < samples:
            found.note(data_loc[:-1] + ("samples",), f"asks for {samples} samples but the data holds {available}: "
                       f"all {available} will be used")


def _collect_at(found: Findings, loc: Loc, check: Callable[[], None], model: ModelSpec | None = None) -> None:
    try:
        check()
    except ProblemList as many:
        for problem in many.problems:
            found.fail(loc, str(problem))
    except GeneratorError as exc:  # the renderer names the field: point at its line in the spec
        where = _spec_loc(exc.where, loc, model) if model is not None else None
        found.fail(where or loc, exc.message if where else str(exc))


_RENDER_WHERE = re.compile(r"^(?:models\[[^\]]+\]\.(?P<field>[^ ]+))?(?: ?\(?variant (?P<variant>[^)]+)\)?)?$")


def _spec_loc(where: str | None, loc: Loc, model: ModelSpec) -> Loc | None:
    """`models[tiny].outputs[logits].dims (variant tiny_fp32)` -> ("models", m, "outputs", 0, "dims")."""
    if model.labels is not None and where == str(model.labels):
        return (*loc, "labels")
    match = _RENDER_WHERE.match(where or "")
    if not where or match is None:
        return None
    if match["field"]:
        out: list[str | int] = list(loc)
        for part in match["field"].split("."):
            name, _, key = part.partition("[")
            out.append(name)
            if key:
                tensors = model.inputs if name == "inputs" else model.outputs if name == "outputs" else []
                index = next((i for i, t in enumerate(tensors) if t.name == key.rstrip("]")), None)
                if index is not None:
                    out.append(index)
        return tuple(out)
    names = [model.variant_name(v) for v in model.variants]
    return (*loc, "variants", names.index(match["variant"])) if match["variant"] in names else None


def _dry_files(rv: ResolvedVariant, signature: Signature) -> dict[str, Any]:
    """The renderer's own files of `rv`, on the source model (the built model has the same inputs and outputs).

    TensorRT plans do not exist before the build: their configs are rendered, not loaded.
    """
    from ..artifacts import Artifact
    from ..render.context import ARTIFACT_KIND, PLAN_FILE
    from ..render.writer import model_files

    kind: Literal["onnx", "plan"] = "onnx" if ARTIFACT_KIND[rv.target] == "onnx" else "plan"
    source = rv.model.onnx if kind == "onnx" else Path(PLAN_FILE)
    files = model_files(rv, Artifact(variant=rv.name, kind=kind, model_file=source, signature=signature))
    return {rv.name: files} if kind == "onnx" else {}


def _classes(model: ModelSpec, signature: Signature) -> int | None:
    """How many classes the model tells apart: the labels file's count, or a single output's last dim."""
    if model.labels is not None:
        from ..render.context import count_labels

        try:
            return count_labels(model.labels)
        except GeneratorError:
            return None
    if len(signature.outputs) == 1 and signature.outputs[0].shape and signature.outputs[0].shape[-1] > 0:
        return signature.outputs[0].shape[-1]
    return None


def _model_sources(model: ModelSpec, m: int) -> list[tuple[Loc, Any, int | None]]:
    out: list[tuple[Loc, Any, int | None]] = []
    if model.evaluation is not None:
        out.append((("models", m, "evaluation", "data"), model.evaluation.data, model.evaluation.samples))
    for v, variant in enumerate(model.variants):
        if variant.calibration is not None:
            out.append((("models", m, "variants", v, "calibration", "data"), variant.calibration.data,
                        variant.calibration.samples))
    return out


def _sweep(spec: Spec, report_dir: Path | None, repository: Path | None) -> None:
    """Leftovers of killed runs (`.NAME.PID-XXXX.tmp`, `.old`) go once the checks have passed."""
    from ..fileio import sweep_leftovers

    if spec.workdir.is_dir():
        sweep_leftovers(spec.workdir, recursive=True)
    for target in (repository or spec.repository, report_dir):
        if target is not None:
            sweep_leftovers(Path(target).parent, Path(target).name)
