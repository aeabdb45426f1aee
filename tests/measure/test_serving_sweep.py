"""Serving defaults from the build's local sweep (issue 12): chosen only where the spec sets nothing,
recorded beside the variant, reused while the model is unchanged, written into config.pbtxt."""

from __future__ import annotations

import json
import os

from generator.measure import sweep
from generator.pipeline import build_artifacts
from generator.render.context import build_context
from tests.spec_factory import SpecFactory

FP32 = "{precision: fp32, target: python-onnxruntime}"
SET = "{precision: fp32, target: python-onnxruntime, triton: {dynamic_batching: {preferred_batch_sizes: [4]}, parameters: {intra_op_threads: 1}}}"


def test_unset_settings_come_from_the_sweep_and_reach_the_config(make_spec: SpecFactory) -> None:
    spec = make_spec(FP32)
    (rv,) = spec.resolved()
    artifact = build_artifacts(spec, progress=False, tune=True)[rv.name]
    chosen = artifact.serving_defaults
    assert chosen["preferred_batch_sizes"][0] in (1, 2, 4, 8)
    assert chosen["intra_op_threads"] in {1, os.cpu_count()}
    record = json.loads((rv.workdir / sweep.SWEEP_FILE).read_text())
    assert set(record["table"]) == {f"{t}x{b}" for t in sorted({1, os.cpu_count() or 1}) for b in (1, 2, 4, 8)}
    context = build_context(rv, artifact)
    assert context["dynamic_batching"]["preferred_batch_sizes"] == chosen["preferred_batch_sizes"]
    assert ("intra_op_threads", str(chosen["intra_op_threads"])) in context["parameters"]


def test_the_sweep_is_reused_while_the_model_is_unchanged(make_spec: SpecFactory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(FP32)
    (rv,) = spec.resolved()
    first = build_artifacts(spec, progress=False, tune=True)[rv.name].serving_defaults

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("swept again")

    monkeypatch.setattr(sweep, "_sweep", fail)
    assert build_artifacts(spec, progress=False, tune=True)[rv.name].serving_defaults == first


def test_settings_in_the_spec_are_kept_and_nothing_is_swept(make_spec: SpecFactory) -> None:
    spec = make_spec(SET)
    (rv,) = spec.resolved()
    artifact = build_artifacts(spec, progress=False, tune=True)[rv.name]
    assert dict(artifact.serving_defaults) == {} and not (rv.workdir / sweep.SWEEP_FILE).exists()
    context = build_context(rv, artifact)
    assert context["dynamic_batching"]["preferred_batch_sizes"] == [4]


def test_no_sweep_without_tune(make_spec: SpecFactory) -> None:
    spec = make_spec(FP32)
    (rv,) = spec.resolved()
    assert dict(build_artifacts(spec, progress=False)[rv.name].serving_defaults) == {}
