"""The load itself: closed loop (N coroutines for concurrency N) or open loop (a request schedule).

Everything runs as coroutines in one event loop; per request the generator does two clock reads and
an append, so the server, not the client, should be what saturates. A `Recorder` collects the current
window and is swapped out at each window boundary by the caller.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from .client import AsyncTriton, describe_error, is_connection_error
from .inputs import RequestPlan
from .windows import WindowData

LATE_S = 0.002  # open loop: a send more than this behind its scheduled time counts as late
# the event loop's timers have 1 ms resolution (epoll rounds timeouts up), so waking half a
# millisecond early centres the send jitter on the schedule instead of always lagging it
_TIMER_LEAD_S = 0.0005
_MAX_ERROR_KINDS = 10
_RETRY_PAUSE_S = 0.01  # after a connection error, so a dead server does not turn into a busy loop


class Recorder:
    """Completed requests of the current window, plus totals over the whole load level."""

    def __init__(self) -> None:
        self.errors: dict[str, int] = {}
        self.total_done = 0
        self.total_failed = 0
        self._reset()

    def _reset(self) -> None:
        self.latencies: list[float] = []
        self.failed = 0
        self.sent = 0
        self.late = 0
        self.dropped = 0
        self.started = time.perf_counter()

    def ok(self, latency_s: float) -> None:
        self.latencies.append(latency_s)

    def fail(self, exc: BaseException) -> None:
        self.failed += 1
        self.total_failed += 1
        key = describe_error(exc)
        if key in self.errors or len(self.errors) < _MAX_ERROR_KINDS:
            self.errors[key] = self.errors.get(key, 0) + 1

    def take(self) -> WindowData:
        """Close the current window and start the next one."""
        now = time.perf_counter()
        data = WindowData(
            duration_s=now - self.started,
            latencies_s=np.asarray(self.latencies, dtype=np.float64),
            failed=self.failed,
            sent=self.sent,
            late=self.late,
            dropped=self.dropped,
        )
        self.total_done += len(self.latencies) + self.failed
        self._reset()
        return data


class Load:
    """Base: sends requests through `client` until `stop()`; `suspect` is set on connection errors."""

    def __init__(self, client: AsyncTriton, model: str, plan: RequestPlan, recorder: Recorder) -> None:
        self.client = client
        self.model = model
        self.plan = plan
        self.recorder = recorder
        self._senders = [client.sender(model, plan.inputs, outputs) for outputs in plan.slot_outputs]
        self.suspect = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def _one(self, slot: int) -> None:
        send = self._senders[slot]
        started = time.perf_counter()
        try:
            await send()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.recorder.fail(exc)
            if is_connection_error(exc):
                self.suspect.set()
                await asyncio.sleep(_RETRY_PAUSE_S)
        else:
            self.recorder.ok(time.perf_counter() - started)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> None:
        raise NotImplementedError

    async def stop(self, drain_s: float) -> None:
        """Stop sending; let in-flight requests finish for up to `drain_s`, then cancel the rest."""
        self._stopping = True
        pending = set(self._tasks)
        if pending and drain_s > 0:
            await asyncio.wait(pending, timeout=drain_s)
        await self.cancel()

    async def cancel(self) -> None:
        self._stopping = True
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class ClosedLoop(Load):
    """Concurrency N: N coroutines, each sending its next request when the previous one returns."""

    def __init__(self, client: AsyncTriton, model: str, plan: RequestPlan, recorder: Recorder, concurrency: int) -> None:
        super().__init__(client, model, plan, recorder)
        self.concurrency = concurrency

    async def _worker(self, slot: int) -> None:
        while not self._stopping:
            await self._one(slot)

    def start(self) -> None:
        for slot in range(self.concurrency):
            self._spawn(self._worker(slot))


class OpenLoop(Load):
    """Request-rate mode: sends on a Poisson or constant schedule, whatever the responses do.

    At most `max_in_flight` requests are outstanding (one per slot); a send due while all slots are
    busy is dropped and counted. Sends that happen more than `LATE_S` after their scheduled time are
    counted as late (the client could not keep up with the schedule).
    """

    def __init__(
        self,
        client: AsyncTriton,
        model: str,
        plan: RequestPlan,
        recorder: Recorder,
        rate: float,
        *,
        schedule: str = "poisson",
        max_in_flight: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(client, model, plan, recorder)
        self.rate = rate
        rng = random.Random(seed)
        self._gap: Callable[[], float] = (
            (lambda: rng.expovariate(rate)) if schedule == "poisson" else (lambda: 1.0 / rate)
        )
        self._free = list(range(min(max_in_flight, len(plan.slot_outputs))))

    async def _send(self, slot: int) -> None:
        try:
            await self._one(slot)
        finally:
            self._free.append(slot)

    async def _schedule(self) -> None:
        recorder = self.recorder
        due = time.perf_counter()
        while not self._stopping:
            due += self._gap()
            delay = due - time.perf_counter() - _TIMER_LEAD_S
            await asyncio.sleep(delay if delay > 0 else 0)  # always yield, even when behind
            if self._stopping:
                break
            if time.perf_counter() - due > LATE_S:
                recorder.late += 1
            if not self._free:
                recorder.dropped += 1
                continue
            recorder.sent += 1
            self._spawn(self._send(self._free.pop()))

    def start(self) -> None:
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule())

    async def stop(self, drain_s: float) -> None:
        self._stopping = True
        await asyncio.gather(self._scheduler, return_exceptions=True)
        await super().stop(drain_s)

    async def cancel(self) -> None:
        self._stopping = True
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.cancel()
            await asyncio.gather(scheduler, return_exceptions=True)
        await super().cancel()
