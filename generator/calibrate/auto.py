"""`method: auto`, second step: where candidate thresholds disagree, pick by the model-output error.

`calibrators.auto` scores each tensor's candidates (entropy, mse, percentiles, minmax) by the
tensor's own quantisation MSE. That is blind to where the error goes: clipping the few large values
of an attention logit or a LayerNorm input costs little MSE and a lot of output accuracy, while a
wide range on a ReLU feeding a classifier costs levels nobody needed. So for every tensor whose
candidates differ materially (amax more than `DISAGREE` apart), each candidate is tried with
*only that tensor* fake-quantised, on a small held-out slice of the calibration data, and the one
with the highest output SQNR (all float outputs against FP32) wins; ties within `TIE_DB` go to the
lower own MSE.

Cheap by construction: one onnxruntime session holds a QuantizeLinear -> DequantizeLinear -> Where
gate on every disputed tensor, with scale and gate as graph inputs, so each (tensor, candidate)
trial is one run of one `SLICE`-sample batch (no session rebuilt); candidates within `DISAGREE` of
each other are merged, and trials x SLICE stays within the number of calibration samples (at least
`MIN_TRIALS`, at most `MAX_TRIALS` trials; the most disputed tensors first, the rest keep the
lowest own error): at most about one more FP32 pass over the calibration data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GeneratorError
from . import methods
from .calibrators import AmaxResult
from .histogram import Histogram

if TYPE_CHECKING:
    import onnx

    from ..signature import Signature
    from ..spec.stages import Calibration

DISAGREE = 1.25  # candidates whose amax differ by less than this factor are the same choice
TIE_DB = 0.5  # SQNR differences below this on a small slice are noise: the lower own MSE wins
SLICE = 32
MAX_TRIALS = 64
MIN_TRIALS = 8
MAX_ERROR_RATIO = 1e3  # candidates with own MSE this much above the best are not worth a trial


def distinct_candidates(result: AmaxResult) -> dict[str, float]:
    """The candidates worth a trial, one per `DISAGREE` band (lowest own MSE kept first)."""
    candidates = result.candidates or {}
    chosen = result.method.removeprefix("auto:")
    order = [chosen] + [c for c in candidates if c != chosen]
    kept: dict[str, float] = {}
    for name in order:
        amax = candidates[name]
        if all(max(amax, a) / max(min(amax, a), 1e-30) >= DISAGREE for a in kept.values()):
            kept[name] = amax
    return kept


def refine_on_holdout(
    model: "onnx.ModelProto",
    results: Mapping[str, AmaxResult],
    histograms: Mapping[str, Histogram],
    calibration: "Calibration",
    signature: "Signature",
) -> dict[str, AmaxResult]:
    """`refine` on the `SLICE` samples that follow the calibration samples (or, when the data has
    no more, the last `SLICE` calibration samples, said so in each reason)."""
    batch, held_out = held_out_batch(calibration, signature)
    size = len(next(iter(batch.values())))
    trials = max(MIN_TRIALS, min(MAX_TRIALS, calibration.samples // max(size, 1)))  # <= about one more pass over the data
    return refine(model, results, histograms, batch, held_out=held_out, max_trials=trials)


def held_out_batch(calibration: "Calibration", signature: "Signature") -> tuple[dict[str, np.ndarray], bool]:
    """One batch of up to `SLICE` samples after the first `calibration.samples`, and whether it is held out."""
    from ..data import load_batches

    firsts = {t.shape[0] if t.shape else -1 for t in signature.inputs}
    fixed = firsts.pop() if len(firsts) == 1 and min(firsts) > 0 else None
    size = fixed or SLICE
    seen = 0
    tail: list[dict[str, np.ndarray]] = []
    held: list[dict[str, np.ndarray]] = []
    for batch in load_batches(calibration.data, signature, batch_size=size, limit=calibration.samples + size):
        usable = len(batch) == size or fixed is None  # a fixed-batch model takes only whole batches
        if seen >= calibration.samples and usable:
            held.append(batch.inputs)
        elif usable and (not tail or len(batch) == size):
            tail = [batch.inputs]
        seen += len(batch)
    chosen = held or tail
    if not chosen:
        raise GeneratorError(f"calibration data: auto needs at least {size} samples for its output check; "
                             "set calibration.samples higher or use an explicit method")
    return dict(chosen[-1]), bool(held)


def refine(
    model: "onnx.ModelProto",
    results: Mapping[str, AmaxResult],
    histograms: Mapping[str, Histogram],
    batch: Mapping[str, np.ndarray],
    *,
    held_out: bool,
    max_trials: int = MAX_TRIALS,
) -> dict[str, AmaxResult]:
    """`results` with each disputed tensor's winner chosen by output SQNR on `batch`."""
    out = dict(results)
    errors = {t: r.candidate_mse or _errors(histograms[t], r) for t, r in results.items() if r.candidates}
    disputed = _disputed(model, results, errors, max_trials=max_trials)
    if not disputed:
        return out
    import onnxruntime as ort

    gated = _gated_model(model, [t for t, _ in disputed])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # basic level: constant folding and Conv+BN fusion, no QDQ fusions (those are "extended"): fake-quant numerics
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sess = ort.InferenceSession(gated.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in model.graph.input}
    feed_base = {k: v for k, v in batch.items() if k in inputs}
    off = {f"{t}__auto_gate": np.array(False) for t, _ in disputed}
    scales = {f"{t}__auto_scale": np.array(1.0, dtype=np.float32) for t, _ in disputed}
    reference = _flat(sess.run(None, {**feed_base, **off, **scales}))
    where = "held-out" if held_out else "in-sample (no held-out calibration data)"
    for tensor, candidates in disputed:
        sqnr = {}
        for name, amax in candidates.items():
            feed = {**feed_base, **off, **scales, f"{tensor}__auto_gate": np.array(True),
                    f"{tensor}__auto_scale": np.array(max(amax / 127.0, 2.0**-40), dtype=np.float32)}
            sqnr[name] = _sqnr_db(reference, _flat(sess.run(None, feed)))
        top = max(sqnr.values())
        tied = [n for n in sqnr if sqnr[n] >= top - TIE_DB]
        winner = min(tied, key=lambda n: errors[tensor][n])
        shown = ", ".join(f"{n} {_fmt(v)}" for n, v in sorted(sqnr.items(), key=lambda kv: -kv[1]))
        base = results[tensor]
        out[tensor] = dataclasses.replace(
            base, amax=float(candidates[winner]), method=f"auto:{winner}", mse=float(errors[tensor][winner]),
            reason=f"best output SQNR with only this tensor INT8, {len(next(iter(batch.values())))} {where} samples: {shown}",
        )
    return out


def _errors(hist: Histogram, result: AmaxResult) -> dict[str, float]:
    """Each candidate's own expected quantisation MSE on the tensor's histogram."""
    names = list(result.candidates or {})
    values = methods.quantization_mse(hist.counts, hist.width, np.array([result.candidates[n] for n in names]))  # type: ignore[index]
    return dict(zip(names, map(float, values)))


def _disputed(
    model: "onnx.ModelProto", results: Mapping[str, AmaxResult], errors: Mapping[str, Mapping[str, float]], *, max_trials: int
) -> list[tuple[str, dict[str, float]]]:
    """(tensor, candidates) pairs to try, most disputed (widest amax spread) first, within MAX_TRIALS."""
    outputs_only = {o.name for o in model.graph.output}
    consumed = {name for node in model.graph.node for name in node.input}
    rows = []
    for tensor, result in results.items():
        if tensor not in consumed or tensor in outputs_only or tensor not in errors:
            continue
        best = min(errors[tensor].values())
        kept = {n: a for n, a in distinct_candidates(result).items() if errors[tensor][n] <= MAX_ERROR_RATIO * max(best, 1e-30)}
        if len(kept) > 1:
            rows.append((math.log(max(kept.values()) / min(kept.values())), tensor, kept))
    rows.sort(key=lambda r: -r[0])
    chosen, trials = [], 0
    for _, tensor, kept in rows:
        if trials + len(kept) > max_trials:
            continue
        chosen.append((tensor, kept))
        trials += len(kept)
    return chosen


def _gated_model(model: "onnx.ModelProto", tensors: Iterable[str]) -> "onnx.ModelProto":
    """A copy where each tensor's consumers read Where(gate, DQ(Q(x, scale)), x); scale and gate are inputs."""
    import onnx
    from onnx import TensorProto, helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    tensors = list(tensors)
    rename = {t: f"{t}__auto_gated" for t in tensors}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    zero = helper.make_tensor("__auto_zero_point", TensorProto.INT8, [], [0])
    graph.initializer.append(zero)
    added = []
    for t in tensors:
        scale, gate = f"{t}__auto_scale", f"{t}__auto_gate"
        graph.input.extend([helper.make_tensor_value_info(scale, TensorProto.FLOAT, []),
                            helper.make_tensor_value_info(gate, TensorProto.BOOL, [])])
        added += [
            helper.make_node("QuantizeLinear", [t, scale, zero.name], [f"{t}__auto_q"]),
            helper.make_node("DequantizeLinear", [f"{t}__auto_q", scale, zero.name], [f"{t}__auto_dq"]),
            helper.make_node("Where", [gate, f"{t}__auto_dq", t], [rename[t]]),
        ]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + added)  # onnxruntime sorts topologically; order here does not matter
    _topological(graph)
    return out


def _topological(graph: "onnx.GraphProto") -> None:
    """Reorder nodes so each comes after its inputs' producers (onnx.checker and onnxruntime want that)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # outer-scope names or a cycle: keep the remaining order
            ordered += rest
            break
        pending = rest
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _flat(outputs: list[np.ndarray]) -> np.ndarray:
    floats = [np.asarray(o, dtype=np.float64).ravel() for o in outputs if np.issubdtype(np.asarray(o).dtype, np.floating)]
    return np.concatenate(floats) if floats else np.zeros(0)


def _sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.sum((reference - other) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / noise)


def _fmt(db: float) -> str:
    return "inf dB" if math.isinf(db) else f"{db:.1f} dB"
