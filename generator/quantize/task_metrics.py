"""Task metrics beyond argmax of the first output: what `evaluation.metric` names.

``METRICS[name](outputs, labels) -> float`` in [0, 1] and ``agreement(name, reference, other)`` (how
often INT8 gives FP32's answer by the same task rule). ``outputs`` is the list of a model's output
arrays in ONNX output order over the whole evaluation set. Pure numpy. The definitions follow the
model zoo's (`benchmarks/zoo/metrics.py`), ported here so trgen does not import from benchmarks/.
It lives in the quantize stage because the accuracy-budget loop scores candidates with it; the
measure stage may import it from here (imports flow forward only).

* ``top1``: argmax of the first output over its last axis equals the integer label.
* ``exact_match_ctc``: greedy CTC decoding of the first output, logits [N, T, C] (batch first),
  blank = class 0: argmax per step, repeats collapsed, blanks dropped; a sample counts when the
  decoded sequence equals its label row, int [N, L] padded with -1 (a text recogniser's exact match).
* ``detection_hit``: F1 of detections against ground-truth boxes (a mAP proxy at one operating
  point). Outputs ``heatmap`` logits [N, C, H, W] (one channel per class, one cell per STRIDE pixels)
  and ``boxes`` [N, 4, H, W] = (dx, dy, w, h): centre ((x + dx) * STRIDE, (y + dy) * STRIDE), size
  (w, h) * BOX_UNIT pixels. Detections: 3x3 local maxima with sigmoid score >= SCORE (at most
  MAX_DETS per image, best first). Labels int [N, K, 5] = (class, x0, y0, x1, y1), class -1 is padding.
  A hit matches a not-yet-matched truth of the same class with IoU >= IOU (greedy, best score first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import GeneratorError

STRIDE = 4
BOX_UNIT = 16.0
SCORE = 0.3
IOU = 0.5
MAX_DETS = 10
CTC_BLANK = 0

Outputs = Sequence[np.ndarray]


def class_predictions(output: np.ndarray) -> np.ndarray:
    """argmax of class scores [N, C] (size-1 middle axes allowed): one class per sample.

    Anything else (a heatmap [N, C, H, W], per-step logits [N, T, C]) is no classifier: argmax over
    its last axis would compare thousands of cells per sample and make a fine INT8 model look
    broken, so it is refused with the fix instead of scored.
    """
    scores = np.asarray(output)
    if scores.ndim > 2 and all(d == 1 for d in scores.shape[1:-1]):
        scores = scores.reshape(len(scores), scores.shape[-1])
    if scores.ndim != 2:
        raise GeneratorError(
            f"evaluation.metric top1 reads the first output as class scores [N, C], but it is {list(scores.shape)}: "
            "set evaluation.metric (exact_match_ctc, detection_hit) for this model"
        )
    return scores.argmax(-1)


def top1(outputs: Outputs, labels: np.ndarray) -> float:
    pred = class_predictions(outputs[0])
    return float(np.mean(pred == np.asarray(labels).reshape(pred.shape)))


def ctc_decode(logits: np.ndarray) -> list[tuple[int, ...]]:
    """Greedy CTC: per sample, argmax per time step, repeats collapsed, blanks removed."""
    best = np.asarray(logits).argmax(-1)  # [N, T]
    if best.ndim != 2:
        raise GeneratorError(f"exact_match_ctc: the first output must be logits [N, T, C], got rank {best.ndim + 1}")
    keep = np.ones_like(best, dtype=bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != CTC_BLANK
    return [tuple(int(c) for c in row[k]) for row, k in zip(best, keep)]


def exact_match_ctc(outputs: Outputs, labels: np.ndarray) -> float:
    truth = [tuple(int(c) for c in row if c >= 0) for row in np.asarray(labels).reshape(len(labels), -1)]
    decoded = ctc_decode(outputs[0])
    return float(np.mean([d == t for d, t in zip(decoded, truth)]))


def decode_detections(heatmap: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """Per image: float [D, 6] = (class, x0, y0, x1, y1, score), best score first."""
    score = 1.0 / (1.0 + np.exp(-heatmap.astype(np.float64)))
    n, _, h, w = score.shape
    padded = np.pad(score, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    around = np.max(np.stack([padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)]), axis=0)
    peaks = (score >= around) & (score >= SCORE)
    out = []
    for b in range(n):
        cls, ys, xs = np.nonzero(peaks[b])
        s = score[b, cls, ys, xs]
        order = np.argsort(-s, kind="stable")[:MAX_DETS]
        cls, ys, xs, s = cls[order], ys[order], xs[order], s[order]
        dx, dy, bw, bh = (boxes[b, k, ys, xs].astype(np.float64) for k in range(4))
        cx, cy = (xs + dx) * STRIDE, (ys + dy) * STRIDE
        bw, bh = np.maximum(bw, 0) * BOX_UNIT, np.maximum(bh, 0) * BOX_UNIT
        out.append(np.stack([cls, cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, s], axis=1))
    return out


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _f1(detections: list[np.ndarray], truths: list[np.ndarray]) -> float:
    hits = n_det = n_gt = 0
    for det, gt in zip(detections, truths):
        n_det, n_gt = n_det + len(det), n_gt + len(gt)
        used = np.zeros(len(gt), dtype=bool)
        for d in det:
            candidates = np.nonzero((gt[:, 0] == d[0]) & ~used)[0] if len(gt) else np.array([], int)
            if not len(candidates):
                continue
            ious = _iou(d[1:5], gt[candidates, 1:5])
            best = int(np.argmax(ious))
            if ious[best] >= IOU:
                used[candidates[best]] = True
                hits += 1
    return 1.0 if n_det + n_gt == 0 else 2.0 * hits / (n_det + n_gt)


def detection_hit(outputs: Outputs, labels: np.ndarray) -> float:
    if len(outputs) < 2:
        raise GeneratorError("detection_hit: the model needs two outputs (heatmap [N, C, H, W], boxes [N, 4, H, W])")
    truths = [row[row[:, 0] >= 0] for row in np.asarray(labels, dtype=np.float64)]
    return _f1(decode_detections(outputs[0], outputs[1]), truths)


METRICS: dict[str, Callable[[Outputs, np.ndarray], float]] = {
    "top1": top1, "exact_match_ctc": exact_match_ctc, "detection_hit": detection_hit,
}


def agreement(name: str, reference: Outputs, other: Outputs) -> float:
    """How often `other` gives the reference's answer by the task rule of `name`."""
    if name == "top1":
        return float(np.mean(class_predictions(reference[0]) == class_predictions(other[0])))
    if name == "exact_match_ctc":
        return float(np.mean([a == b for a, b in zip(ctc_decode(reference[0]), ctc_decode(other[0]))]))
    if name == "detection_hit":
        truths = [d[:, :5] for d in decode_detections(reference[0], reference[1])]
        return _f1(decode_detections(other[0], other[1]), truths)
    raise GeneratorError(f"unknown evaluation metric {name!r} (one of: {', '.join(METRICS)})")


def score(name: str, outputs: Outputs, labels: np.ndarray | None, reference: Outputs) -> float:
    """The task metric in [0, 1]: against labels when there are any, else agreement with `reference`."""
    if name not in METRICS:
        raise GeneratorError(f"unknown evaluation metric {name!r} (one of: {', '.join(METRICS)})")
    return METRICS[name](outputs, labels) if labels is not None else agreement(name, reference, outputs)
