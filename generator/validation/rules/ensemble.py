"""An ensemble's own config (core `ValidateEnsembleSchedulingConfig` and `BuildEnsembleGraph`): the
scheduler goes with platform "ensemble", complete steps, and a data flow in which every input is
used, every output written, and no tensor written twice or left unused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..backends import ENSEMBLE
from ..locator import Key
from ..problems import Finding
from ..subject import ModelUnderCheck


def step_path(s: int, field: str, key: str | None = None) -> tuple[Any, ...]:
    path: tuple[Any, ...] = ("ensemble_scheduling", "step", s, field)
    return path + (Key(key),) if key is not None else path


def scheduler(m: ModelUnderCheck) -> Iterator[Finding]:
    """ensemble_scheduling goes with platform 'ensemble' and only with it."""
    has = m.config.HasField("ensemble_scheduling")
    if m.kind == ENSEMBLE and not has:
        yield Finding(("platform",), f"ensemble scheduling must be set for ensemble {m.name} whose platform is ensemble")
    if has and m.platform != ENSEMBLE:
        yield Finding(("ensemble_scheduling",), f"ensemble scheduling cannot be set for model '{m.name}' whose platform "
                      "is not ensemble (set platform: \"ensemble\")")


def ensemble(m: ModelUnderCheck) -> Iterator[Finding]:
    """No instance_group/optimization/model_warmup; steps with model_name, input_map and output_map."""
    if m.kind != ENSEMBLE or not m.config.HasField("ensemble_scheduling"):
        return
    c = m.config
    for field, present, message in (
        ("instance_group", bool(c.instance_group), "instance group should not be specified for ensemble"),
        ("optimization", c.HasField("optimization"), "optimization should not be specified for ensemble"),
        ("model_warmup", bool(c.model_warmup), "model_warmup can not be specified for ensemble"),
    ):
        if present:
            yield Finding((field,), f"{message} '{m.name}'")
    steps = list(c.ensemble_scheduling.step)
    if not steps:
        yield Finding(("ensemble_scheduling",), f"must specify 'step' for ensemble '{m.name}'")
    writers: dict[str, int] = {}
    for s, step in enumerate(steps):
        for field in ("model_name", "input_map", "output_map"):
            if not getattr(step, field):
                yield Finding(("ensemble_scheduling", "step", s), f"must specify '{field}' in step {s} of ensemble "
                              f"'{m.name}'")
        for key in sorted(step.output_map):
            tensor = step.output_map[key]
            if tensor in writers:
                yield Finding(step_path(s, "output_map", key), f"ensemble tensor '{tensor}' can appear in an output "
                              f"map only once for ensemble '{m.name}' step {s}")
            writers[tensor] = s
    yield from _flow(m, steps)


def _flow(m: ModelUnderCheck, steps: list[Any]) -> Iterator[Finding]:
    c = m.config
    ready = {io.name for io in c.input}
    changed = True
    while changed:  # a step runs once all its inputs are ready; its outputs then are
        changed = False
        for step in steps:
            if set(step.input_map.values()) <= ready and not set(step.output_map.values()) <= ready:
                ready |= set(step.output_map.values())
                changed = True
    consumed = {t for step in steps for t in step.input_map.values()}
    written = {t for step in steps for t in step.output_map.values()}
    outputs = {io.name for io in c.output}
    for i, io in enumerate(c.input):
        if io.name not in consumed | written:
            yield Finding(("input", i, "name"), f"ensemble input '{io.name}' for ensemble {m.name}' is not used")
    for i, io in enumerate(c.output):
        if io.name not in consumed | written:
            yield Finding(("output", i, "name"), f"ensemble output '{io.name}' for ensemble {m.name}' is not used")
        elif io.name not in ready:
            yield Finding(("output", i, "name"), f"output '{io.name}' for ensemble '{m.name}' is not written (no "
                          "step produces it from the ensemble inputs)")
    for s, step in enumerate(steps):
        for key in sorted(step.input_map):
            if step.input_map[key] not in ready:
                yield Finding(step_path(s, "input_map", key), f"ensemble tensor '{step.input_map[key]}' is unused in "
                              f"ensemble '{m.name}': step {s} reads it, but nothing writes it")
        for key in sorted(step.output_map):
            tensor = step.output_map[key]
            if tensor not in consumed and tensor not in outputs:
                yield Finding(step_path(s, "output_map", key), f"ensemble tensor '{tensor}' is unused in ensemble "
                              f"'{m.name}'")


RULES = {
    "scheduler": scheduler,
    "ensemble": ensemble,
}
