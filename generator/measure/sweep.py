"""Serving defaults from a short local sweep: the batch size and intra-op threads a model runs fastest at.

Served throughput follows raw speed only when the server batches the way the model likes. A
preferred batch of 32 suits a small 28x28 CNN, while a 224x224 CNN on a small CPU can run ten times
fewer samples per second at batch 32 than at batch 1 (activations fall out of cache). So when the
spec leaves `dynamic_batching.preferred_batch_sizes` or the python backend's `intra_op_threads`
unset, the build measures the variant's own ONNX file in onnxruntime: samples per second at batch
sizes 1, 2, 4, ... up to max_batch_size (at most 64), with 1 thread and with every core, about
`BUDGET_S` each, best of alternating runs. The fastest (threads, batch) becomes the default, the
renderer writes it into config.pbtxt, and `serving_defaults.json` in the variant's workdir records
the table and the choice (reused while the model file and settings are unchanged).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..fileio import atomic_write_text, sha256_file
from ..spec import ResolvedVariant
from ..spec.model import CPU_TARGETS

log = logging.getLogger(__name__)

SWEEP_FILE = "serving_defaults.json"
BUDGET_S = 0.15
SWEEP_REVISION = 1
MAX_SWEEP_BATCH = 64


@dataclass(frozen=True)
class ServingDefaults:
    """What the sweep chose (None: the spec sets it, or nothing to choose) and the samples/s it saw."""

    preferred_batch_sizes: tuple[int, ...] | None
    intra_op_threads: int | None
    table: dict[str, float]  # "threads x batch" -> samples per second

    def hints(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.preferred_batch_sizes is not None:
            out["preferred_batch_sizes"] = list(self.preferred_batch_sizes)
        if self.intra_op_threads is not None:
            out["intra_op_threads"] = self.intra_op_threads
        return out


def unset_defaults(rv: ResolvedVariant) -> tuple[bool, bool]:
    """(preferred sizes unset with dynamic batching on, intra_op_threads unset) for a CPU batching variant."""
    if rv.target not in CPU_TARGETS or rv.model.max_batch_size < 1:
        return False, False
    batching = rv.triton.dynamic_batching  # None: the renderer's default, dynamic batching on
    sizes = batching is None or (batching.enabled and not batching.preferred_batch_sizes)
    threads = rv.target == "python-onnxruntime" and "intra_op_threads" not in (rv.triton.parameters or {})
    return sizes, threads


def serving_defaults(rv: ResolvedVariant, artifact: Artifact) -> ServingDefaults | None:
    """The sweep's choice for what the spec leaves unset; None when it sets everything (no sweep runs)."""
    want_sizes, want_threads = unset_defaults(rv)
    if not (want_sizes or want_threads):
        return None
    path = rv.workdir / SWEEP_FILE
    key = {"model": sha256_file(artifact.model_file), "revision": SWEEP_REVISION, "sizes": want_sizes,
           "threads": want_threads, "max_batch_size": rv.model.max_batch_size, "cpus": os.cpu_count()}
    stored = _stored(path, key)
    if stored is None:
        stored = _sweep(rv, artifact, want_sizes, want_threads)
        atomic_write_text(path, json.dumps({"key": key, **stored}, indent=2) + "\n")
    chosen = ServingDefaults(
        preferred_batch_sizes=tuple(stored["preferred_batch_sizes"]) if stored.get("preferred_batch_sizes") else None,
        intra_op_threads=stored.get("intra_op_threads"), table=stored["table"],
    )
    log.info("%s: serving defaults from the local sweep: %s", rv.name,
             ", ".join(f"{k} {v}" for k, v in chosen.hints().items()))
    return chosen


def _stored(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("table"), dict) else None


def _sweep(rv: ResolvedVariant, artifact: Artifact, want_sizes: bool, want_threads: bool) -> dict[str, Any]:
    from .speed import _session, served_threads, timing_feeds

    base_threads = served_threads(rv)["intra_op_threads"] or 1
    thread_options = sorted({1, os.cpu_count() or 1}) if want_threads else [base_threads]
    batching = rv.triton.dynamic_batching
    fixed = list(batching.preferred_batch_sizes) if batching is not None and batching.preferred_batch_sizes else []
    top = min(rv.model.max_batch_size, MAX_SWEEP_BATCH)
    sizes = [b for b in (1 << i for i in range(7)) if b <= top] if want_sizes else [max(fixed) if fixed else top]
    first = next(iter(timing_feeds(rv, artifact, sizes=[max(sizes)]).values()))
    table: dict[str, float] = {}
    for threads in thread_options:
        session = _session(artifact.model_file, {"intra_op_threads": threads, "inter_op_threads": 1})
        for size in sizes:
            feeds = {k: np.ascontiguousarray(v[:size]) for k, v in first.items()}
            table[f"{threads}x{size}"] = round(size / _best_seconds(session, feeds), 1)
    best = max(table, key=lambda k: table[k])
    threads, size = (int(v) for v in best.split("x"))
    return {"table": table, "preferred_batch_sizes": [size] if want_sizes else None,
            "intra_op_threads": threads if want_threads else None}


def _best_seconds(session: Any, feeds: dict[str, np.ndarray]) -> float:
    for _ in range(2):
        session.run(None, feeds)
    best, deadline, runs = float("inf"), time.perf_counter() + BUDGET_S, 0
    while time.perf_counter() < deadline or runs < 3:
        start = time.perf_counter()
        session.run(None, feeds)
        best, runs = min(best, time.perf_counter() - start), runs + 1
    return best
