"""The build's speed check (issue 12): INT8 vs its FP32 sibling, profile when slower, exit 1 unless allowed.

No timing is asserted: the measured medians are replaced where a test needs a verdict, so only the
check's logic (pairs, verdict, profile parsing, record, exit status) is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.measure import speed
from generator.measure.speed import OpTime, SpeedCheck, aggregate_profile, op_kind, speed_pairs
from generator.pipeline import build_artifacts, speed_checks
from tests.spec_factory import CALIBRATION, SpecFactory

VARIANTS = f"""{{precision: fp32, target: python-onnxruntime}}
{{precision: int8, target: python-onnxruntime, {CALIBRATION}}}"""
ALLOWED = f"""{{precision: fp32, target: python-onnxruntime}}
{{precision: int8, target: python-onnxruntime, build: {{allow_slower_int8: true}}, {CALIBRATION}}}"""


def _slow_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every timing say INT8 takes twice FP32's time (the real sessions still run)."""
    real = speed.time_side_by_side

    def fake(sessions, feeds, budget_s):  # type: ignore[no-untyped-def]
        real(sessions, feeds, 0.0)
        return {"fp32": 1.0, "int8": 2.0}

    monkeypatch.setattr(speed, "time_side_by_side", fake)


def test_pairs_each_int8_with_its_fp32_sibling(make_spec: SpecFactory) -> None:
    spec = make_spec(VARIANTS)
    (pair,) = speed_pairs(spec.resolved())
    assert (pair[0].precision, pair[1].precision) == ("int8", "fp32")


def test_check_records_ratios_at_batch_1_and_the_preferred_batch(make_spec: SpecFactory) -> None:
    spec = make_spec(VARIANTS)
    artifacts = build_artifacts(spec, progress=False)
    (check,) = speed_checks(spec, artifacts)
    assert set(check.speedup) == {1, 8}  # preferred batch: min(max_batch_size, 16)
    assert check.threads == {"intra_op_threads": 1, "inter_op_threads": 1}
    record = json.loads((spec.resolved()[1].workdir / speed.SPEED_FILE).read_text())
    assert record["variant"] == check.variant and set(record["speedup"]) == {"1", "8"}


def test_slower_int8_fails_and_names_where_the_time_goes(make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_int8(monkeypatch)
    spec = make_spec(VARIANTS)
    (check,) = speed_checks(spec, build_artifacts(spec, progress=False))
    assert check.slower and not check.passed
    assert check.profile and all(o.kind in ("float", "conversion", "integer") for o in check.profile)
    assert "FAILED" in check.summary()
    assert any("conversion op" in line or "float island" in line for line in check.hotspots())


def test_allow_slower_int8_passes(make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_int8(monkeypatch)
    spec = make_spec(ALLOWED)
    (check,) = speed_checks(spec, build_artifacts(spec, progress=False))
    assert check.slower and check.passed and "allowed" in check.summary()


def test_trgen_build_exits_1_when_int8_is_slower(make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from generator.cli import main

    _slow_int8(monkeypatch)
    make_spec(VARIANTS)
    assert main(["build", str(tmp_path / "spec.yaml")]) == 1


def test_profile_aggregates_kernel_events_per_node() -> None:
    events = [
        {"cat": "Node", "name": "conv_kernel_time", "dur": 90000, "args": {"op_name": "QLinearConv"}},  # first run
        {"cat": "Node", "name": "conv_kernel_time", "dur": 2000, "args": {"op_name": "QLinearConv"}},
        {"cat": "Node", "name": "conv_kernel_time", "dur": 2000, "args": {"op_name": "QLinearConv"}},
        {"cat": "Node", "name": "dq_kernel_time", "dur": 3000, "args": {"op_name": "DequantizeLinear"}},
        {"cat": "Node", "name": "dq_kernel_time", "dur": 3000, "args": {"op_name": "DequantizeLinear"}},
        {"cat": "Node", "name": "dq_kernel_time", "dur": 3000, "args": {"op_name": "DequantizeLinear"}},
        {"cat": "Node", "name": "dq_fence_before", "dur": 9000, "args": {"op_name": "DequantizeLinear"}},
        {"cat": "Session", "name": "model_run", "dur": 99000},
    ]
    ops = aggregate_profile(events, runs=3)
    assert ops == (OpTime("dq", "DequantizeLinear", 3.0, "conversion"), OpTime("conv", "QLinearConv", 2.0, "integer"))


@pytest.mark.parametrize("op, kind", [("QLinearConv", "integer"), ("QuantizeLinear", "conversion"), ("Sigmoid", "float"),
                                      ("MaxPool", "integer"), ("BatchNormalization", "float")])
def test_op_kind(op: str, kind: str) -> None:
    assert op_kind(op) == kind


def test_verdict() -> None:
    fast = SpeedCheck("a_int8", "a_fp32", {}, {1: 2.0}, {1: 1.0}, allowed=False)
    assert fast.passed and not fast.slower and fast.to_dict()["speedup"] == {"1": 2.0}
