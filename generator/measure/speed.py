"""The build's speed check: each INT8 variant against its FP32 sibling, raw onnxruntime, side by side.

INT8 that runs slower than FP32 is a regression nobody asked for, so `trgen build` measures it on
this machine before anything is served: both models in onnxruntime's CPU provider with the thread
settings the served config uses (python backend: intra/inter-op threads), at batch 1 and at the
preferred batch, timed in alternating runs (best of each) for a fixed budget of a few hundred ms.
When INT8 is not faster, onnxruntime's profiler names where its time goes: float islands (ops left
in float kernels) and conversion ops (QuantizeLinear / DequantizeLinear). A slower INT8 variant
fails the check (more than `NOISE` slower at either batch) unless its spec sets
`build.allow_slower_int8: true`.

The record is written beside the variant's model (`speed_check.json`) and returned to the caller.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact
from ..errors import GeneratorError
from ..fileio import atomic_write_text
from ..spec import ResolvedVariant
from ..spec.model import CPU_TARGETS

log = logging.getLogger(__name__)

SPEED_FILE = "speed_check.json"
BUDGET_S = 0.3  # per model and batch size, both models together
NOISE = 0.03  # INT8 counts as slower below (1 - NOISE) x FP32's speed: timer and scheduler noise
CONVERSION_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast"})
INTEGER_PREFIXES = ("QLinear", "QGemm", "MatMulInteger", "ConvInteger", "QAttention", "QEmbed")
INTEGER_OPS = frozenset({"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity"})


@dataclass(frozen=True)
class OpTime:
    """Total time (ms per run) of one op type or node in the INT8 model's profile, and how it runs."""

    name: str
    op_type: str
    ms: float
    kind: str  # "float" | "conversion" | "integer"


@dataclass(frozen=True)
class SpeedCheck:
    """INT8 vs FP32 on this machine: `speedup[b]` = FP32 ms / INT8 ms at batch b (> 1: INT8 faster)."""

    variant: str
    reference: str
    threads: dict[str, int]
    fp32_ms: dict[int, float]
    int8_ms: dict[int, float]
    allowed: bool
    profile: tuple[OpTime, ...] = field(default=())

    @property
    def speedup(self) -> dict[int, float]:
        return {b: self.fp32_ms[b] / self.int8_ms[b] for b in self.int8_ms}

    @property
    def slower(self) -> bool:
        return any(s < 1.0 - NOISE for s in self.speedup.values())

    @property
    def passed(self) -> bool:
        return self.allowed or not self.slower

    def summary(self) -> str:
        ratios = ", ".join(f"batch {b}: {s:.2f}x" for b, s in self.speedup.items())
        line = f"{self.variant}: INT8 / FP32 ({self.reference}) speed {ratios}"
        if not self.slower:
            return line
        verdict = "allowed by build.allow_slower_int8" if self.allowed else "FAILED: INT8 is slower than FP32"
        return "\n".join([f"{line} -- {verdict}", *self.hotspots()])

    def hotspots(self, top: int = 5) -> list[str]:
        """The slowest float islands and conversion ops, one line each."""
        lines = []
        for kind, label in (("float", "float island"), ("conversion", "conversion op")):
            ops = [o for o in self.profile if o.kind == kind][:top]
            lines += [f"  {label}: {o.name} ({o.op_type}) {o.ms:.3f} ms/run" for o in ops]
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["speedup"] = {str(b): round(s, 4) for b, s in self.speedup.items()}
        data["passed"] = self.passed
        return data


def speed_pairs(variants: Sequence[ResolvedVariant]) -> list[tuple[ResolvedVariant, ResolvedVariant]]:
    """(int8, fp32 sibling) per INT8 variant on an onnxruntime target whose model has an FP32 CPU variant."""
    fp32 = {rv.model.name: rv for rv in variants if rv.precision == "fp32" and rv.target in CPU_TARGETS}
    return [(rv, fp32[rv.model.name]) for rv in variants
            if rv.precision == "int8" and rv.target in CPU_TARGETS and rv.model.name in fp32]


def check_speed(int8: ResolvedVariant, fp32: ResolvedVariant, artifacts: Mapping[str, Artifact]) -> SpeedCheck:
    """Time both artifacts (alternating, medians), profile INT8 when it is not faster, write the record."""
    threads = served_threads(int8)
    int8_path, fp32_path = artifacts[int8.name].model_file, artifacts[fp32.name].model_file
    sessions = {"int8": _session(int8_path, threads), "fp32": _session(fp32_path, threads)}
    feeds_by_batch = timing_feeds(int8, artifacts[fp32.name])  # the int8 variant's calibration data
    times: dict[str, dict[int, float]] = {"int8": {}, "fp32": {}}
    for batch, feeds in feeds_by_batch.items():
        medians = time_side_by_side(sessions, feeds, BUDGET_S)
        for key in times:
            times[key][batch] = medians[key]
    check = SpeedCheck(
        variant=int8.name, reference=fp32.name, threads=threads, fp32_ms=times["fp32"], int8_ms=times["int8"],
        allowed=int8.build.allow_slower_int8,
    )
    if check.slower:
        worst = min(check.speedup, key=lambda b: check.speedup[b])
        check = replace(check, profile=profile_ops(int8_path, threads, feeds_by_batch[worst]))
    atomic_write_text(int8.workdir / SPEED_FILE, json.dumps(check.to_dict(), indent=2) + "\n")
    return check


def served_threads(rv: ResolvedVariant) -> dict[str, int]:
    """The thread counts the python backend's session gets (its defaults: 1 and 1, as the renderer sets)."""
    params = rv.triton.parameters or {}
    return {key: int(params.get(key, 1) or 0) for key in ("intra_op_threads", "inter_op_threads")}


def preferred_batch(rv: ResolvedVariant) -> int:
    """The batch the dynamic batcher aims for: the largest preferred size, else min(max_batch_size, 16)."""
    mbs = rv.model.max_batch_size
    batching = rv.triton.dynamic_batching
    sizes = [s for s in (batching.preferred_batch_sizes if batching is not None else []) if s <= mbs]
    return max(sizes) if sizes else min(mbs, 16)


def timing_feeds(
    rv: ResolvedVariant, artifact: Artifact, *, sizes: Sequence[int] | None = None
) -> dict[int, dict[str, np.ndarray]]:
    """Real inputs (the first samples of the variant's calibration data, else the model's evaluation
    data) at batch 1 and the preferred batch, or at `sizes`."""
    from ..data import load_batches

    calibration, evaluation = rv.variant.calibration, rv.model.evaluation
    source = calibration.data if calibration is not None else evaluation.data if evaluation is not None else None
    if source is None:
        raise GeneratorError(f"variant {rv.name} has no calibration or evaluation data to time it on")
    if sizes is None:
        sizes = sorted({1, preferred_batch(rv)}) if rv.model.max_batch_size > 0 else [0]
    want = max(sizes) or 1
    batches = load_batches(source, artifact.signature, batch_size=want, limit=want)
    first = next(iter(batches)).inputs
    feeds: dict[int, dict[str, np.ndarray]] = {}
    for size in sizes:
        if size == 0:
            feeds[1] = dict(first)
            continue
        reps = -(-size // len(next(iter(first.values()))))
        feeds[size] = {k: np.ascontiguousarray(np.concatenate([v] * reps)[:size]) for k, v in first.items()}
    return feeds


def time_side_by_side(sessions: Mapping[str, Any], feeds: Mapping[str, np.ndarray], budget_s: float) -> dict[str, float]:
    """Best ms per run of each session, runs alternating so that drift in the machine's load hits both alike.

    The minimum, not the median: on a shared machine other processes only ever add time, and the
    fastest of many alternating runs is the most repeatable estimate of what the model costs.
    """
    for _ in range(3):  # warm up: first runs allocate and pick kernels
        for session in sessions.values():
            session.run(None, feeds)
    samples: dict[str, list[float]] = defaultdict(list)
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or min(len(v) for v in samples.values() or [[]]) < 5:
        for key, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feeds)
            samples[key].append((time.perf_counter() - start) * 1e3)
        if min(len(v) for v in samples.values()) >= 200:
            break
    return {key: min(values) for key, values in samples.items()}


def profile_ops(model: Path, threads: Mapping[str, int], feeds: Mapping[str, np.ndarray], runs: int = 10) -> tuple[OpTime, ...]:
    """Per-node time (ms per run) from onnxruntime's profiler, slowest first, each marked float/conversion/integer."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="trgen-profile-") as tmp:
        options = _options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "int8")
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):
            session.run(None, dict(feeds))
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    return aggregate_profile(events, runs + 1)


def aggregate_profile(events: Sequence[Mapping[str, Any]], runs: int) -> tuple[OpTime, ...]:
    """onnxruntime's `Node` kernel events per node: the median over runs (ms per run), slowest first.

    The median, not the mean: a session's first runs allocate and would dominate the total.
    `runs` is kept for callers that know how many runs were recorded (a node seen fewer times ran
    inside a branch, counted as 0 the other times).
    """
    durations: dict[str, list[float]] = defaultdict(list)
    op_types: dict[str, str] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        durations[node].append(float(event.get("dur", 0)) / 1e3)
        op_types[node] = str(event.get("args", {}).get("op_name", "?"))
    totals = {node: statistics.median(values + [0.0] * max(0, runs - len(values))) for node, values in durations.items()}
    ops = [OpTime(node, op_types[node], ms, op_kind(op_types[node])) for node, ms in totals.items()]
    return tuple(sorted(ops, key=lambda o: -o.ms))


def op_kind(op_type: str) -> str:
    if op_type in CONVERSION_OPS:
        return "conversion"
    if op_type.startswith(INTEGER_PREFIXES) or op_type in INTEGER_OPS:
        return "integer"
    return "float"


def _options(threads: Mapping[str, int]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads.get("intra_op_threads", 1)
    options.inter_op_num_threads = threads.get("inter_op_threads", 1)
    options.log_severity_level = 3
    return options


def _session(path: Path, threads: Mapping[str, int]) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), _options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise GeneratorError(f"onnxruntime cannot load the model for the speed check: {str(exc).splitlines()[0]}", where=path) from None
