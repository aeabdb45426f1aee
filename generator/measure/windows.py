"""Measurement windows and the stability rule (perf_analyzer's: the last three windows agree).

A window's raw data (latencies, counters, the server's statistics delta) becomes a `WindowResult`;
the load level stops once the last `STABLE_WINDOWS` windows are within `stability_pct` of their mean
for both throughput and p99 latency, or when `max_windows` is reached (then reported unstable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .results import LatencyStats, ServerSplit, WindowResult
from .stats import StatsSnapshot, latency_stats, server_split

STABLE_WINDOWS = 3


@dataclass
class WindowData:
    """What one window collected before it is summarised (latencies in seconds)."""

    duration_s: float
    latencies_s: np.ndarray
    failed: int = 0
    sent: int = 0
    late: int = 0
    dropped: int = 0
    stats_delta: StatsSnapshot | None = None


def summarize(index: int, data: WindowData, batch_size: int) -> WindowResult:
    completed = int(data.latencies_s.size)
    rate = completed / data.duration_s if data.duration_s > 0 else math.nan
    return WindowResult(
        index=index,
        duration_s=data.duration_s,
        completed=completed,
        failed=data.failed,
        requests_per_s=rate,
        infer_per_s=rate * batch_size,
        latency=latency_stats(data.latencies_s),
        server=server_split(data.stats_delta) if data.stats_delta is not None else None,
        sent=data.sent,
        late=data.late,
        dropped=data.dropped,
    )


def spread_pct(values: Sequence[float]) -> float:
    """Largest distance of a value from the mean, in percent of the mean (inf when undefined)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)):
        return math.inf
    mean = float(array.mean())
    if mean <= 0:
        return math.inf
    return float(np.max(np.abs(array - mean)) / mean * 100.0)


def spreads(windows: Sequence[WindowResult]) -> tuple[float, float]:
    """(throughput, p99) spread in percent over the last three windows; inf with fewer windows."""
    if len(windows) < STABLE_WINDOWS:
        return math.inf, math.inf
    last = windows[-STABLE_WINDOWS:]
    return spread_pct([w.requests_per_s for w in last]), spread_pct([w.latency.p99_ms for w in last])


def is_stable(windows: Sequence[WindowResult], stability_pct: float) -> bool:
    """True when the last three windows' throughput and p99 latency are each within the limit."""
    throughput, p99 = spreads(windows)
    return throughput <= stability_pct and p99 <= stability_pct


@dataclass(frozen=True)
class Aggregate:
    """The headline numbers over the measured windows."""

    requests_per_s: float
    infer_per_s: float
    latency: LatencyStats
    server: ServerSplit | None
    failed: int
    achieved_rate: float
    late: int
    dropped: int


def aggregate(data: Sequence[WindowData], batch_size: int) -> Aggregate:
    """Pool the raw data of several windows (latencies merged, counters and deltas summed)."""
    duration = sum(d.duration_s for d in data)
    latencies = np.concatenate([d.latencies_s for d in data]) if data else np.empty(0)
    rate = latencies.size / duration if duration > 0 else math.nan
    deltas = [d.stats_delta for d in data]
    server = None
    if data and all(delta is not None for delta in deltas):
        total = StatsSnapshot()
        for delta in deltas:
            assert delta is not None
            total = total + delta
        server = server_split(total)
    sent = sum(d.sent for d in data)
    return Aggregate(
        requests_per_s=rate,
        infer_per_s=rate * batch_size,
        latency=latency_stats(latencies),
        server=server,
        failed=sum(d.failed for d in data),
        achieved_rate=sent / duration if duration > 0 else math.nan,
        late=sum(d.late for d in data),
        dropped=sum(d.dropped for d in data),
    )
