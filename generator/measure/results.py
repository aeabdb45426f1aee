"""Typed benchmark results: one `BenchResult` per variant per load level, built from windows.

Plain frozen dataclasses with `to_dict()` (JSON-ready), so the report, the pipeline and tests read
fields instead of digging through dicts. A result is truthy only when it is complete, stable and
error-free; `problems()` says which of those it missed and by how much.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["concurrency", "request_rate"]


def _clean(value: Any) -> Any:
    """NaN/inf -> None so the JSON is strict (json.dumps would write bare NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class LatencyStats:
    """Client-side latency of completed requests, in milliseconds (nearest-rank percentiles)."""

    count: int
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class ServerSplit:
    """Where a request spent its time inside Triton, from `get_inference_statistics` deltas.

    Times are averages per request in microseconds; `executions`/`inferences` give the batch the
    dynamic batcher actually formed (`avg_batch` = inferences per model execution).
    """

    requests: int
    failed: int
    queue_us: float
    compute_input_us: float
    compute_infer_us: float
    compute_output_us: float
    executions: int
    inferences: int

    @property
    def avg_batch(self) -> float:
        return self.inferences / self.executions if self.executions else math.nan

    @property
    def total_us(self) -> float:
        return self.queue_us + self.compute_input_us + self.compute_infer_us + self.compute_output_us


@dataclass(frozen=True)
class WindowResult:
    """One measurement window: what completed inside it and what the server counted meanwhile."""

    index: int
    duration_s: float
    completed: int
    failed: int
    requests_per_s: float
    infer_per_s: float
    latency: LatencyStats
    server: ServerSplit | None
    sent: int = 0  # request-rate mode: requests issued in the window
    late: int = 0  # request-rate mode: sends more than the late threshold behind schedule
    dropped: int = 0  # request-rate mode: sends skipped because max_in_flight requests were outstanding

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else math.nan


@dataclass(frozen=True)
class BenchResult:
    """One variant at one load level (a concurrency or an offered request rate).

    The headline numbers (`requests_per_s`, `latency`, `server`, ...) are over the measured windows:
    the last three when the stability rule held, otherwise the last three seen (`stable` False).
    """

    model: str  # spec model name (or the Triton model name for an arbitrary server)
    variant: str  # Triton model name that was benchmarked
    precision: str | None  # fp32 / fp16 / int8 when known from a spec
    target: str | None  # python-onnxruntime / onnxruntime / tensorrt when known from a spec
    protocol: str
    mode: Mode
    level: float  # concurrency (an integer) or offered request rate (requests/s)
    batch_size: int
    shared_memory: str
    stability_pct: float
    stable: bool
    complete: bool  # False when the run was cut short (server gone, interrupted)
    requests_per_s: float
    infer_per_s: float
    latency: LatencyStats
    server: ServerSplit | None
    failed: int  # failed requests over the measured windows
    failed_total: int  # failed requests over the whole level, warm-up included
    requests_total: int  # requests finished over the whole level, warm-up included
    throughput_spread_pct: float = math.nan  # over the last three windows: max distance from their mean
    p99_spread_pct: float = math.nan
    achieved_rate: float = math.nan  # request-rate mode: sends/s over the measured windows
    late: int = 0
    dropped: int = 0
    windows: tuple[WindowResult, ...] = ()
    measured: tuple[int, ...] = ()  # indices of the windows the headline numbers come from
    errors: dict[str, int] = field(default_factory=dict)  # first distinct error messages -> count
    note: str = ""

    def __bool__(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Why this result is not a clean measurement (empty when it is)."""
        out = []
        if not self.complete:
            out.append(f"incomplete ({self.note or 'stopped early'})")
        elif not self.stable:
            out.append(
                f"not stable after {len(self.windows)} windows: the last 3 spread {self.throughput_spread_pct:.1f}% "
                f"in throughput and {self.p99_spread_pct:.1f}% in p99 (limit {self.stability_pct:g}%)"
            )
        if self.failed_total:
            out.append(f"{self.failed_total} of {self.requests_total} requests failed")
        if self.dropped:
            out.append(f"{self.dropped} sends dropped (max in-flight reached)")
        return out

    @property
    def label(self) -> str:
        return f"{self.variant} {self.mode.replace('_', '-')} {self.level:g}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.server is not None:
            data["server"]["avg_batch"] = self.server.avg_batch
        for window, raw in zip(self.windows, data["windows"]):
            raw["achieved_rate"] = window.achieved_rate
            if window.server is not None:
                raw["server"]["avg_batch"] = window.server.avg_batch
        data["problems"] = self.problems()
        return _clean(data)  # type: ignore[no-any-return]
