"""Percentiles, Triton statistics deltas and the window stability rule, on data (no server)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.measure.results import LatencyStats, WindowResult
from generator.measure.stats import StatsSnapshot, latency_stats, server_split, snapshot_from_json
from generator.measure.windows import WindowData, aggregate, is_stable, spread_pct, spreads, summarize


def test_latency_percentiles_are_nearest_rank_in_ms() -> None:
    latencies = np.arange(1, 101) / 1000.0  # 1 ms .. 100 ms
    stats = latency_stats(np.random.default_rng(0).permutation(latencies))
    assert (stats.count, stats.min_ms, stats.max_ms) == (100, pytest.approx(1.0), pytest.approx(100.0))
    assert stats.p50_ms == pytest.approx(50.0)
    assert stats.p90_ms == pytest.approx(90.0)
    assert stats.p95_ms == pytest.approx(95.0)
    assert stats.p99_ms == pytest.approx(99.0)
    assert stats.mean_ms == pytest.approx(50.5)


def test_latency_percentile_is_an_observed_value() -> None:
    stats = latency_stats([0.001, 0.002, 0.010])
    assert stats.p50_ms == pytest.approx(2.0)  # not interpolated
    assert stats.p99_ms == pytest.approx(10.0)


def test_latency_of_nothing_is_nan_not_an_error() -> None:
    stats = latency_stats([])
    assert stats.count == 0 and math.isnan(stats.p99_ms)


GRPC_STATS = {  # tritonclient.grpc as_json: int64 as strings, zero fields left out
    "model_stats": [
        {
            "name": "add", "version": "1", "inference_count": "80", "execution_count": "4",
            "inference_stats": {
                "success": {"count": "10", "ns": "5000000"},
                "queue": {"count": "10", "ns": "1000000"},
                "compute_input": {"count": "10", "ns": "200000"},
                "compute_infer": {"count": "10", "ns": "3000000"},
                "compute_output": {"count": "10", "ns": "400000"},
                "fail": {},
            },
        }
    ]
}
HTTP_STATS = {  # tritonclient.http: plain ints, every field present
    "model_stats": [
        {
            "name": "add", "version": "1", "inference_count": 0, "execution_count": 0,
            "inference_stats": {
                key: {"count": 0, "ns": 0}
                for key in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
            },
        }
    ]
}


def test_snapshot_reads_grpc_and_http_json() -> None:
    grpc = snapshot_from_json(GRPC_STATS, "add")
    assert grpc.success_count == 10 and grpc.queue_ns == 1_000_000 and grpc.fail_count == 0
    assert grpc.inference_count == 80 and grpc.execution_count == 4
    assert snapshot_from_json(HTTP_STATS, "add") == StatsSnapshot()


def test_snapshot_sums_versions_and_rejects_unknown_model() -> None:
    two = {"model_stats": GRPC_STATS["model_stats"] * 2}
    assert snapshot_from_json(two, "add").success_count == 20
    with pytest.raises(KeyError):
        snapshot_from_json(GRPC_STATS, "other")


def test_split_is_per_request_average_of_the_delta() -> None:
    before = snapshot_from_json(HTTP_STATS, "add")
    after = snapshot_from_json(GRPC_STATS, "add")
    split = server_split(after - before)
    assert split.requests == 10
    assert split.queue_us == pytest.approx(100.0)  # 1 ms over 10 requests
    assert split.compute_input_us == pytest.approx(20.0)
    assert split.compute_infer_us == pytest.approx(300.0)
    assert split.compute_output_us == pytest.approx(40.0)
    assert split.avg_batch == pytest.approx(20.0)  # 80 samples over 4 executions
    assert split.total_us == pytest.approx(460.0)
    assert math.isnan(server_split(StatsSnapshot()).queue_us)  # no requests: undefined, not zero


def _window(rate: float, p99: float, index: int = 0) -> WindowResult:
    lat = LatencyStats(100, p99 / 2, 0.1, p99 / 2, p99, p99, p99, p99)
    return WindowResult(index, 1.0, int(rate), 0, rate, rate, lat, None)


def test_stable_when_last_three_windows_are_within_the_limit() -> None:
    noisy_start = [_window(50, 9.0), _window(1000, 2.0), _window(1040, 2.1), _window(980, 2.05)]
    assert is_stable(noisy_start, 10.0)
    assert not is_stable(noisy_start[:3], 10.0)  # the noisy first window is among the last three


def test_unstable_on_throughput_or_p99_or_too_few_windows() -> None:
    assert not is_stable([_window(1000, 2.0), _window(1000, 2.0)], 10.0)
    assert not is_stable([_window(1000, 2.0), _window(1000, 2.0), _window(1300, 2.0)], 10.0)
    assert not is_stable([_window(1000, 2.0), _window(1000, 2.0), _window(1000, 2.8)], 10.0)
    assert not is_stable([_window(0, math.nan)] * 3, 10.0)  # nothing completed


def test_spread_is_max_distance_from_mean_in_percent() -> None:
    assert spread_pct([90, 100, 110]) == pytest.approx(10.0)
    assert spread_pct([0, 0, 0]) == math.inf
    through, p99 = spreads([_window(90, 1.0), _window(100, 1.0), _window(110, 1.3)])
    assert through == pytest.approx(10.0) and p99 == pytest.approx(0.2 / 1.1 * 100)


@given(
    st.lists(st.floats(1.0, 1e6), min_size=3, max_size=3),
    st.lists(st.floats(0.01, 1e3), min_size=3, max_size=3),
    st.floats(0.1, 1e3),
    st.floats(1.0, 50.0),
)
def test_stability_ignores_units(rates: list[float], p99s: list[float], scale: float, pct: float) -> None:
    windows = [_window(r, p) for r, p in zip(rates, p99s)]
    scaled = [_window(r * scale, p * scale) for r, p in zip(rates, p99s)]
    through, p99 = spreads(windows)
    if abs(through - pct) > 1e-6 and abs(p99 - pct) > 1e-6:  # away from the boundary (rounding)
        assert is_stable(windows, pct) == is_stable(scaled, pct)


def test_window_summary_and_aggregate_pool_latencies() -> None:
    a = WindowData(1.0, np.full(100, 0.001), failed=1, sent=120, late=2, dropped=0,
                   stats_delta=StatsSnapshot(success_count=100, queue_count=100, queue_ns=10_000_000))
    b = WindowData(2.0, np.full(100, 0.003), sent=200, stats_delta=StatsSnapshot(success_count=100))
    window = summarize(0, a, batch_size=8)
    assert window.requests_per_s == pytest.approx(100.0) and window.infer_per_s == pytest.approx(800.0)
    assert window.achieved_rate == pytest.approx(120.0)
    assert window.server is not None and window.server.queue_us == pytest.approx(100.0)
    total = aggregate([a, b], batch_size=8)
    assert total.requests_per_s == pytest.approx(200 / 3.0)
    assert total.latency.count == 200 and total.latency.p50_ms == pytest.approx(1.0)
    assert total.latency.p99_ms == pytest.approx(3.0)
    assert (total.failed, total.late) == (1, 2)
    assert total.achieved_rate == pytest.approx(320 / 3.0)
    assert total.server is not None and total.server.requests == 200
    assert total.server.queue_us == pytest.approx(100.0)  # queue counted for window a only


def test_aggregate_without_statistics_has_no_split() -> None:
    assert aggregate([WindowData(1.0, np.full(3, 0.001))], 1).server is None
