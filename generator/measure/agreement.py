"""How far INT8 outputs are from FP32 ones: per-output error statistics and top-k counts.

Pure numpy, streamed batch by batch (an evaluation set never has to fit in memory twice):
    stats = ErrorAccumulator("logits"); stats.update(fp32_batch, int8_batch); stats.result()
Definitions (reference r = FP32, candidate c = INT8, noise n = c - r):
  max_abs_error, mean_abs_error  over every element
  cosine       mean over samples of cos(r_i, c_i), each sample flattened (1.0 when both are zero)
  min_cosine   the worst sample's cosine
  sqnr_db      10 log10(sum r^2 / sum n^2) over every element (inf when identical)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputError:
    """Error statistics of one output tensor over the whole evaluation set."""

    name: str
    elements: int
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    min_cosine: float
    sqnr_db: float


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """Signal-to-quantisation-noise ratio in dB from summed squares (inf when there is no noise)."""
    if noise_power == 0.0:
        return math.inf
    if signal_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def cosine_per_sample(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """cos(r_i, c_i) for each sample i (dim 0), each flattened; two zero vectors count as identical."""
    r = reference.reshape(reference.shape[0], -1).astype(np.float64)
    c = candidate.reshape(candidate.shape[0], -1).astype(np.float64)
    dot = np.einsum("ij,ij->i", r, c)
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1)
    both_zero = (np.linalg.norm(r, axis=1) == 0) & (np.linalg.norm(c, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, np.clip(cos, -1.0, 1.0))


class ErrorAccumulator:
    """Running sums for `OutputError`, fed one batch of (reference, candidate) at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.elements = 0
        self.samples = 0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.signal = 0.0
        self.noise = 0.0
        self.sum_cos = 0.0
        self.min_cos = math.inf

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        if reference.shape != candidate.shape:
            raise ValueError(f"output {self.name!r}: reference shape {reference.shape} != candidate shape {candidate.shape}")
        if reference.size == 0:
            return
        r = np.atleast_1d(reference).astype(np.float64)
        c = np.atleast_1d(candidate).astype(np.float64)
        diff = c - r
        self.elements += r.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))))
        self.sum_abs += float(np.sum(np.abs(diff)))
        self.signal += float(np.sum(r * r))
        self.noise += float(np.sum(diff * diff))
        cos = cosine_per_sample(r, c)
        self.samples += cos.size
        self.sum_cos += float(np.sum(cos))
        self.min_cos = min(self.min_cos, float(np.min(cos)))

    def result(self) -> OutputError:
        if self.elements == 0:
            raise ValueError(f"output {self.name!r}: no data was compared")
        return OutputError(
            name=self.name,
            elements=self.elements,
            max_abs_error=self.max_abs,
            mean_abs_error=self.sum_abs / self.elements,
            cosine=self.sum_cos / self.samples,
            min_cosine=self.min_cos,
            sqnr_db=sqnr_db(self.signal, self.noise),
        )


def error_stats(name: str, reference: np.ndarray, candidate: np.ndarray) -> OutputError:
    """`OutputError` of two whole arrays (dim 0 = samples)."""
    accumulator = ErrorAccumulator(name)
    accumulator.update(reference, candidate)
    return accumulator.result()


def class_scores(output: np.ndarray) -> np.ndarray | None:
    """[N, C] class scores from a classification-like output ([N, C], [N, C, 1, 1], ...), else None."""
    if output.ndim < 2:
        return None
    per_sample = [d for d in output.shape[1:] if d != 1]
    if len(per_sample) != 1 or per_sample[0] < 2:
        return None
    return output.reshape(output.shape[0], per_sample[0])


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many samples have their label among the k highest scores (ties: lower index first)."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return int(np.sum(np.any(top == labels.reshape(-1, 1), axis=1)))


class TopKCounter:
    """Top-1/top-5 accuracy of two models on labelled data, and how often their top-1 agree."""

    def __init__(self) -> None:
        self.samples = 0
        self.labelled = 0
        self.reference_top1 = 0
        self.candidate_top1 = 0
        self.reference_top5 = 0
        self.candidate_top5 = 0
        self.agree = 0
        self.classes = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> None:
        """`reference`/`candidate`: [N, C] class scores; `labels`: [N] integer class ids or None."""
        self.classes = reference.shape[1]
        self.samples += reference.shape[0]
        self.agree += int(np.sum(np.argmax(reference, axis=1) == np.argmax(candidate, axis=1)))
        if labels is None:
            return
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != reference.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {reference.shape[0]} samples")
        self.labelled += labels.shape[0]
        self.reference_top1 += topk_hits(reference, labels, 1)
        self.candidate_top1 += topk_hits(candidate, labels, 1)
        self.reference_top5 += topk_hits(reference, labels, 5)
        self.candidate_top5 += topk_hits(candidate, labels, 5)

    def agreement(self) -> float | None:
        return self.agree / self.samples if self.samples else None

    def accuracy(self) -> dict[str, float | None]:
        """top1/top5 of both models as fractions; None without labels (top5 also when C < 5)."""
        n = self.labelled
        if n == 0:
            return {"reference_top1": None, "candidate_top1": None, "reference_top5": None, "candidate_top5": None}
        top5 = self.classes >= 5
        return {
            "reference_top1": self.reference_top1 / n,
            "candidate_top1": self.candidate_top1 / n,
            "reference_top5": self.reference_top5 / n if top5 else None,
            "candidate_top5": self.candidate_top5 / n if top5 else None,
        }
