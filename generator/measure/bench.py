"""`trgen bench`: load levels with warm-up and stable measurement windows, on any Triton model.

For each load level (a concurrency, then each offered request rate) the load starts, runs `warmup_s`
unrecorded, then measures `window_s` windows until the last three agree within `stability_pct`
(throughput and p99) or `max_windows` is reached. Around each window the server's statistics are
read, giving the queue/compute split. If the server stops answering, the run ends with
`BenchAborted` (a GeneratorError) that carries the results measured so far; on cancellation (Ctrl-C)
the partial level is handed to `on_result` before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import GeneratorError
from .client import PROTOCOLS, AsyncTriton, describe_error
from .inputs import SHARED_MEMORY, RequestPlan, request_plan
from .loadgen import ClosedLoop, Load, OpenLoop, Recorder
from .results import BenchResult, LatencyStats, Mode, ServerSplit, WindowResult
from .stats import StatsSnapshot
from .windows import WindowData, aggregate, is_stable, spreads, summarize

if TYPE_CHECKING:
    from ..spec import ResolvedVariant
    from ..spec.stages import Benchmark
    from tqdm import tqdm

__all__ = [
    "BenchAborted", "BenchResult", "BenchSettings", "BenchTarget", "LatencyStats", "ServerSplit", "WindowResult",
    "bench_model", "bench_variants", "run_bench",
]

SCHEDULES = ("poisson", "constant")
OnResult = Callable[[BenchResult], None]


@dataclass(frozen=True)
class BenchSettings:
    """How to load one model; defaults match the spec's `benchmark:` block."""

    protocol: str = "grpc"
    concurrency: tuple[int, ...] = (1, 4, 16)
    request_rates: tuple[float, ...] = ()
    batch_size: int = 1
    warmup_s: float = 1.0
    window_s: float = 2.0
    max_windows: int = 8
    stability_pct: float = 10.0
    shared_memory: str = "none"
    schedule: str = "poisson"
    max_in_flight: int = 256
    request_timeout_s: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.protocol in PROTOCOLS, f"protocol must be one of {', '.join(PROTOCOLS)}"),
            (self.shared_memory in SHARED_MEMORY, f"shared_memory must be one of {', '.join(SHARED_MEMORY)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (bool(self.concurrency) or bool(self.request_rates), "give at least one concurrency or request rate"),
            (all(c >= 1 for c in self.concurrency), "concurrency values must be >= 1"),
            (all(r > 0 for r in self.request_rates), "request rates must be > 0"),
            (self.batch_size >= 1, "batch size must be >= 1"),
            (self.warmup_s >= 0 and self.window_s > 0, "warmup_s must be >= 0 and window_s > 0"),
            (self.max_windows >= 3, "max_windows must be at least 3 (the stability rule compares the last three)"),
            (self.stability_pct > 0, "stability_pct must be > 0"),
            (self.max_in_flight >= 1, "max_in_flight must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise GeneratorError(f"benchmark settings: {message}")

    @classmethod
    def from_benchmark(cls, benchmark: "Benchmark", **overrides: Any) -> "BenchSettings":
        """The spec's `benchmark:` block, with non-None keyword overrides (e.g. from the CLI) on top."""
        values: dict[str, Any] = {
            "protocol": benchmark.protocol,
            "concurrency": tuple(benchmark.concurrency),
            "request_rates": tuple(benchmark.request_rates),
            "batch_size": benchmark.batch_size,
            "warmup_s": benchmark.warmup_s,
            "window_s": benchmark.window_s,
            "max_windows": benchmark.max_windows,
            "stability_pct": benchmark.stability_pct,
            "shared_memory": benchmark.shared_memory,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def levels(self) -> list[tuple[Mode, float]]:
        return [("concurrency", float(c)) for c in self.concurrency] + [("request_rate", r) for r in self.request_rates]


@dataclass(frozen=True)
class BenchTarget:
    """Which model to load, where, and how to label its results."""

    url: str
    model: str  # the Triton model name
    label: str | None = None  # the spec model name (default: the Triton name)
    precision: str | None = None
    target: str | None = None  # the spec variant's target, for pairing INT8 with its FP32 sibling
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # dynamic dims, without batch


class BenchAborted(GeneratorError):
    """The server stopped answering mid-run; `partial` holds every result measured until then."""

    def __init__(self, message: str, partial: Sequence[BenchResult]) -> None:
        super().__init__(message)
        self.partial = tuple(partial)


class _ServerGone(Exception):
    pass


class ServerLike(Protocol):
    """What bench needs of generator.serve.ServerHandle."""

    @property
    def grpc_url(self) -> str: ...

    @property
    def http_url(self) -> str: ...


async def run_bench(
    target: BenchTarget, settings: BenchSettings, *, on_result: OnResult | None = None, progress: bool = True
) -> list[BenchResult]:
    """Every load level of one model, in order (async; see `bench_model` for the blocking form)."""
    from tqdm import tqdm

    results: list[BenchResult] = []

    def keep(result: BenchResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    levels = settings.levels()
    slots = max([int(v) for m, v in levels if m == "concurrency"] + [settings.max_in_flight if settings.request_rates else 0])
    async with AsyncTriton(
        target.url, settings.protocol, connections=slots, request_timeout_s=settings.request_timeout_s
    ) as client:
        meta = await client.model_meta(target.model)
        async with request_plan(
            client, meta, batch_size=settings.batch_size, shapes=target.shapes,
            shared_memory=settings.shared_memory, slots=slots, seed=settings.seed,
        ) as plan:
            with tqdm(total=len(levels), desc=target.model, unit="level", disable=not progress, leave=False) as bar:
                for mode, level in levels:
                    try:
                        await _Level(client, plan, target, settings, mode, level, bar).run(keep)
                    except _ServerGone as gone:
                        raise BenchAborted(
                            f"the server at {client.url} stopped answering while benchmarking {target.model} "
                            f"({mode.replace('_', ' ')} {level:g}): {gone}; {len(results)} result(s) kept, the last "
                            "one partial",
                            results,
                        ) from None
                    bar.update(1)
    return results


class _Level:
    """One load level: warm-up, windows until stable, then a BenchResult (also when cut short)."""

    def __init__(
        self, client: AsyncTriton, plan: RequestPlan, target: BenchTarget, settings: BenchSettings,
        mode: Mode, level: float, bar: "tqdm[Any]",
    ) -> None:
        self.client, self.plan, self.target, self.settings = client, plan, target, settings
        self.mode, self.level, self.bar = mode, level, bar
        self.recorder = Recorder()
        self.data: list[WindowData] = []
        self.windows: list[WindowResult] = []
        self.load: Load
        if mode == "concurrency":
            self.load = ClosedLoop(client, target.model, plan, self.recorder, int(level))
        else:
            self.load = OpenLoop(
                client, target.model, plan, self.recorder, level, schedule=settings.schedule,
                max_in_flight=settings.max_in_flight, seed=settings.seed,
            )

    async def run(self, keep: OnResult) -> None:
        settings = self.settings
        self.load.start()
        try:
            await self._wait(settings.warmup_s)
            self.recorder.take()  # warm-up is not measured
            before = await self._stats()
            while len(self.windows) < settings.max_windows:
                await self._wait(settings.window_s)
                data = self.recorder.take()
                after = await self._stats()
                data.stats_delta = after - before if after is not None and before is not None else None
                before = after
                self.data.append(data)
                self.windows.append(summarize(len(self.windows), data, settings.batch_size))
                last = self.windows[-1]
                self.bar.set_postfix_str(
                    f"{self.mode.replace('_', '-')} {self.level:g} window {last.index + 1}: "
                    f"{last.infer_per_s:.0f} infer/s p99 {last.latency.p99_ms:.2f} ms"
                )
                if is_stable(self.windows, settings.stability_pct):
                    break
            await self.load.stop(drain_s=settings.request_timeout_s)
        except _ServerGone as gone:
            await self.load.cancel()
            keep(self.result(complete=False, note=f"server stopped answering: {gone}"))
            raise
        except asyncio.CancelledError:
            await self.load.cancel()
            keep(self.result(complete=False, note="interrupted"))
            raise
        self.recorder.take()  # requests drained after the last window count in the totals
        keep(self.result(complete=True))

    async def _wait(self, seconds: float) -> None:
        """Sleep while the load runs; on a connection error check the server is still alive."""
        deadline = asyncio.get_running_loop().time() + seconds
        suspect = self.load.suspect
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                await asyncio.wait_for(suspect.wait(), remaining)
            except asyncio.TimeoutError:
                return
            if not await self.client.is_live():
                raise _ServerGone(next(iter(self.recorder.errors), "not live"))
            suspect.clear()

    async def _stats(self) -> StatsSnapshot | None:
        try:
            return await asyncio.wait_for(self.client.stats(self.target.model), 10.0)
        except Exception as exc:
            if not await self.client.is_live():
                raise _ServerGone(describe_error(exc)) from None
            return None  # statistics unavailable (e.g. disabled): the split is left out

    def result(self, *, complete: bool, note: str = "") -> BenchResult:
        settings = self.settings
        measured = list(range(len(self.windows)))[-3:]
        agg = aggregate([self.data[i] for i in measured], settings.batch_size)
        throughput_spread, p99_spread = spreads(self.windows)
        return BenchResult(
            model=self.target.label or self.target.model,
            variant=self.target.model,
            precision=self.target.precision,
            target=self.target.target,
            protocol=settings.protocol,
            mode=self.mode,
            level=self.level,
            batch_size=settings.batch_size,
            shared_memory=settings.shared_memory,
            stability_pct=settings.stability_pct,
            stable=complete and is_stable(self.windows, settings.stability_pct),
            complete=complete,
            requests_per_s=agg.requests_per_s,
            infer_per_s=agg.infer_per_s,
            latency=agg.latency,
            server=agg.server,
            failed=agg.failed,
            failed_total=self.recorder.total_failed,
            requests_total=self.recorder.total_done + len(self.recorder.latencies) + self.recorder.failed,
            throughput_spread_pct=throughput_spread,
            p99_spread_pct=p99_spread,
            achieved_rate=agg.achieved_rate if self.mode == "request_rate" else math.nan,
            late=agg.late,
            dropped=agg.dropped,
            windows=tuple(self.windows),
            measured=tuple(measured),
            errors=dict(self.recorder.errors),
            note=note,
        )


def bench_model(
    target: BenchTarget, settings: BenchSettings, *, on_result: OnResult | None = None, progress: bool = True
) -> list[BenchResult]:
    """Blocking `run_bench` for any model on any Triton URL."""
    return asyncio.run(run_bench(target, settings, on_result=on_result, progress=progress))


def variant_shapes(rv: "ResolvedVariant") -> dict[str, tuple[int, ...]]:
    """Default dims (without batch) of dynamic inputs: the first TensorRT profile's `opt` shapes."""
    if not rv.model.profiles:
        return {}
    return {name: tuple(r.opt[1:] if rv.model.max_batch_size > 0 else r.opt) for name, r in rv.model.profiles[0].items()}


def bench_variants(
    server: ServerLike,
    variants: Sequence["ResolvedVariant"],
    *,
    overrides: Mapping[str, Any] | None = None,
    on_result: OnResult | None = None,
    progress: bool = True,
) -> list[BenchResult]:
    """Each variant of a spec on a running server, with its spec benchmark settings (+ overrides)."""
    overrides = dict(overrides or {})
    shapes = overrides.pop("shapes", None)
    results: list[BenchResult] = []

    def keep(result: BenchResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for rv in variants:
        settings = BenchSettings.from_benchmark(rv.benchmark, **overrides)
        url = server.grpc_url if settings.protocol == "grpc" else server.http_url
        target = BenchTarget(
            url=url, model=rv.name, label=rv.model.name, precision=rv.precision, target=rv.target,
            shapes={**variant_shapes(rv), **(shapes or {})},
        )
        try:
            asyncio.run(run_bench(target, settings, on_result=keep, progress=progress))
        except BenchAborted as exc:
            raise BenchAborted(exc.message, results) from None
    return results

