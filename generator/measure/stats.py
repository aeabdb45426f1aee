"""Pure numbers: latency percentiles and Triton statistics snapshots/deltas.

Triton's statistics are cumulative since load; the split for a window is the difference of two
snapshots. The gRPC client returns protobuf JSON (int64 as strings, zero fields omitted) and the HTTP
client plain JSON; `snapshot_from_json` reads both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .results import LatencyStats, ServerSplit

_DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


def latency_stats(latencies_s: Sequence[float] | np.ndarray) -> LatencyStats:
    """Summarise latencies given in seconds; percentiles by nearest rank (as perf_analyzer reports)."""
    values = np.asarray(latencies_s, dtype=np.float64) * 1e3
    if values.size == 0:
        nan = math.nan
        return LatencyStats(0, nan, nan, nan, nan, nan, nan, nan)
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99], method="inverted_cdf")
    return LatencyStats(
        count=int(values.size),
        mean_ms=float(values.mean()),
        min_ms=float(values.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(values.max()),
    )


@dataclass(frozen=True)
class StatsSnapshot:
    """Cumulative counters of one model (all versions summed): counts and nanoseconds."""

    success_count: int = 0
    success_ns: int = 0
    fail_count: int = 0
    fail_ns: int = 0
    queue_count: int = 0
    queue_ns: int = 0
    compute_input_count: int = 0
    compute_input_ns: int = 0
    compute_infer_count: int = 0
    compute_infer_ns: int = 0
    compute_output_count: int = 0
    compute_output_ns: int = 0
    inference_count: int = 0
    execution_count: int = 0

    def __sub__(self, earlier: "StatsSnapshot") -> "StatsSnapshot":
        return StatsSnapshot(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})

    def __add__(self, other: "StatsSnapshot") -> "StatsSnapshot":
        return StatsSnapshot(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def snapshot_from_json(stats: Mapping[str, Any], model: str) -> StatsSnapshot:
    """Read `get_inference_statistics(model)` output (gRPC `as_json=True` or HTTP) into counters."""
    total = StatsSnapshot()
    found = False
    for entry in stats.get("model_stats", []):
        if entry.get("name", model) != model:
            continue
        found = True
        inference = entry.get("inference_stats", {})
        values: dict[str, int] = {
            "inference_count": int(entry.get("inference_count", 0)),
            "execution_count": int(entry.get("execution_count", 0)),
        }
        for key in _DURATIONS:
            duration = inference.get(key, {})
            values[f"{key}_count"] = int(duration.get("count", 0))
            values[f"{key}_ns"] = int(duration.get("ns", 0))
        total = total + StatsSnapshot(**values)
    if not found:
        raise KeyError(model)
    return total


def server_split(delta: StatsSnapshot) -> ServerSplit:
    """Per-request averages of a snapshot difference (each duration over its own count)."""

    def per_request_us(ns: int, count: int) -> float:
        return ns / count / 1e3 if count > 0 else math.nan

    return ServerSplit(
        requests=delta.success_count,
        failed=delta.fail_count,
        queue_us=per_request_us(delta.queue_ns, delta.queue_count),
        compute_input_us=per_request_us(delta.compute_input_ns, delta.compute_input_count),
        compute_infer_us=per_request_us(delta.compute_infer_ns, delta.compute_infer_count),
        compute_output_us=per_request_us(delta.compute_output_ns, delta.compute_output_count),
        executions=delta.execution_count,
        inferences=delta.inference_count,
    )
