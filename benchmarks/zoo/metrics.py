"""Task metrics of the zoo models, pure numpy: ``METRICS[name](outputs, labels) -> float`` in [0, 1].

``outputs`` is the list of a model's output arrays in ONNX output order (whole evaluation set),
``labels`` the ``labels`` array of its ``data/evaluation.npz``. ``agreement(name, ref, other)``
scores one model's outputs against another's (INT8 against FP32) with the same task rule.

* ``top1``: argmax of the first output over its last axis equals the integer label.
* ``exact_match_ctc``: greedy CTC decoding of the first output, logits [N, T, C] (batch first),
  blank = class 0: argmax per step, repeats collapsed, blanks dropped; a sample counts when the
  decoded sequence equals its label row, int [N, L] padded with -1.
* ``detection_hit``: F1 of detections against ground-truth boxes (a mAP proxy at one operating
  point). Outputs: ``heatmap`` logits [N, C, H, W] (one channel per class, one cell per STRIDE
  pixels) and ``boxes`` [N, 4, H, W] = (dx, dy, w, h): the object centre is
  ``((x + dx) * STRIDE, (y + dy) * STRIDE)`` pixels and its size ``(w, h) * BOX_UNIT`` pixels.
  Detections: cells that are the maximum of their 3x3 neighbourhood in their class channel with
  sigmoid score >= SCORE (at most MAX_DETS per image, best first). Labels: int [N, K, 5] =
  (class, x0, y0, x1, y1) in pixels, rows with class -1 are padding. A detection is a hit when it
  matches a not-yet-matched ground truth of the same class with IoU >= IOU (greedy, best score
  first). F1 = 2 * hits / (detections + ground truths), over the whole set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

STRIDE = 4
BOX_UNIT = 16.0
SCORE = 0.3
IOU = 0.5
MAX_DETS = 10


def top1(outputs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(outputs[0]).argmax(-1) == np.asarray(labels)))


CTC_BLANK = 0


def ctc_decode(logits: np.ndarray) -> list[tuple[int, ...]]:
    best = np.asarray(logits).argmax(-1)  # [N, T]
    keep = np.ones_like(best, dtype=bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != CTC_BLANK
    return [tuple(int(c) for c in row[k]) for row, k in zip(best, keep)]


def exact_match_ctc(outputs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    truth = [tuple(int(c) for c in row if c >= 0) for row in np.asarray(labels).reshape(len(labels), -1)]
    return float(np.mean([d == t for d, t in zip(ctc_decode(outputs[0]), truth)]))


def decode_detections(heatmap: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """Per image: float [D, 6] = (class, x0, y0, x1, y1, score), best score first."""
    score = 1.0 / (1.0 + np.exp(-heatmap.astype(np.float64)))
    n, c, h, w = score.shape
    padded = np.pad(score, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    neighbourhood = np.max(
        np.stack([padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)]), axis=0
    )
    peaks = (score >= neighbourhood) & (score >= SCORE)
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
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _f1(detections: list[np.ndarray], truths: list[np.ndarray]) -> float:
    hits = n_det = n_gt = 0
    for det, gt in zip(detections, truths):
        n_det += len(det)
        n_gt += len(gt)
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


def _truths(labels: np.ndarray) -> list[np.ndarray]:
    labels = np.asarray(labels, dtype=np.float64)
    return [row[row[:, 0] >= 0] for row in labels]


def detection_hit(outputs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    return _f1(decode_detections(outputs[0], outputs[1]), _truths(labels))


METRICS: dict[str, Callable[[Sequence[np.ndarray], np.ndarray], float]] = {
    "top1": top1,
    "exact_match_ctc": exact_match_ctc,
    "detection_hit": detection_hit,
}


def agreement(name: str, reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    """How often ``other`` gives the reference's answer: top-1 agreement; for CTC the fraction of
    identical decoded sequences; for detection the F1 of ``other``'s detections against the
    reference's detections taken as ground truth."""
    if name == "top1":
        return float(np.mean(reference[0].argmax(-1) == other[0].argmax(-1)))
    if name == "exact_match_ctc":
        return float(np.mean([a == b for a, b in zip(ctc_decode(reference[0]), ctc_decode(other[0]))]))
    if name == "detection_hit":
        truths = [d[:, :5] for d in decode_detections(reference[0], reference[1])]
        return _f1(decode_detections(other[0], other[1]), truths)
    raise KeyError(name)
