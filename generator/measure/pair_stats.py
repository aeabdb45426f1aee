"""Pair statistics: what a comparison accumulates over batches, and the judgement against tolerances.

Shared by the live comparison (`compare`) and the offline one (`verify`, onnxruntime or TensorRT
against FP32), so both judge with the same statistics and the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import GeneratorError
from ..spec import Tolerances
from .agreement import ErrorAccumulator, TopKCounter, class_scores
from .comparison import Check, PairComparison


class PairStats:
    """What a comparison accumulates over the batches: error statistics per output, top-k counts.

    Shared by the live comparison and any offline one (e.g. onnxruntime vs a built artifact), so
    both judge with the same statistics and the same tolerance checks.
    """

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)
        self.errors = {name: ErrorAccumulator(name) for name in self.outputs}
        self.topk = TopKCounter()
        self.classifier: str | None = None
        self.batches = 0

    def update(self, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], labels: np.ndarray | None) -> None:
        """One batch of both models' outputs (name -> array, samples on dim 0) and its labels."""
        for name in self.outputs:
            self.errors[name].update(np.asarray(reference[name]), np.asarray(candidate[name]))
        if self.batches == 0:  # the first output shaped like class scores drives top-k and agreement
            self.classifier = next((name for name in self.outputs if class_scores(np.asarray(reference[name])) is not None), None)
        self.batches += 1
        if self.classifier is not None:
            ref_scores = class_scores(np.asarray(reference[self.classifier]))
            cand_scores = class_scores(np.asarray(candidate[self.classifier]))
            assert ref_scores is not None and cand_scores is not None
            self.topk.update(ref_scores, cand_scores, labels)

    def judge(
        self, *, model: str, target: str, reference: str, candidate: str, tolerances: Tolerances, metrics: Sequence[str]
    ) -> PairComparison:
        if not any(acc.elements for acc in self.errors.values()):
            raise GeneratorError(f"{candidate}: the evaluation data gave no samples")
        return _judge(model, target, reference, candidate, self.errors, self.topk, self.classifier, tolerances, metrics)


def _judge(
    model: str, target: str, reference: str, candidate: str, errors: Mapping[str, ErrorAccumulator],
    topk: TopKCounter, classifier: str | None, tolerances: Tolerances, metrics: Sequence[str],
) -> PairComparison:
    accuracy = topk.accuracy()
    agreement = topk.agreement() if classifier is not None else None
    drop = None
    if accuracy["reference_top1"] is not None and accuracy["candidate_top1"] is not None:
        drop = (accuracy["reference_top1"] - accuracy["candidate_top1"]) * 100.0
    outputs = tuple(acc.result() for acc in errors.values() if acc.elements)
    checks: list[Check] = []
    notes: list[str] = []
    if "top1" in metrics:
        if drop is None:
            notes.append("no labels (or no classification output): top-1 drop not checked")
        else:
            limit = tolerances.max_top1_drop
            checks.append(Check("max_top1_drop", drop, limit, drop <= limit, f"top-1 drop {drop:.2f} points {'<=' if drop <= limit else '>'} {limit:g}"))
    if "agreement" in metrics:
        if agreement is None:
            notes.append("no classification-like output ([N, C]): top-1 agreement not checked")
        else:
            limit = tolerances.min_top1_agreement
            checks.append(Check("min_top1_agreement", agreement, limit, agreement >= limit, f"top-1 agreement {agreement:.4f} {'>=' if agreement >= limit else '<'} {limit:g}"))
    if "error" in metrics:
        for out in outputs:
            if tolerances.min_cosine is not None:
                ok = out.cosine >= tolerances.min_cosine
                checks.append(Check("min_cosine", out.cosine, tolerances.min_cosine, ok, f"{out.name}: cosine {out.cosine:.6f} {'>=' if ok else '<'} {tolerances.min_cosine:g}"))
            if tolerances.min_sqnr_db is not None:
                ok = out.sqnr_db >= tolerances.min_sqnr_db
                checks.append(Check("min_sqnr_db", out.sqnr_db, tolerances.min_sqnr_db, ok, f"{out.name}: SQNR {out.sqnr_db:.2f} dB {'>=' if ok else '<'} {tolerances.min_sqnr_db:g}"))
    return PairComparison(
        model=model, target=target, reference=reference, candidate=candidate,
        samples=topk.samples if classifier is not None else _samples(errors), labelled=topk.labelled,
        classification_output=classifier,
        reference_top1=accuracy["reference_top1"], candidate_top1=accuracy["candidate_top1"],
        reference_top5=accuracy["reference_top5"] if "top5" in metrics else None,
        candidate_top5=accuracy["candidate_top5"] if "top5" in metrics else None,
        top1_drop_points=drop, top1_agreement=agreement, outputs=outputs, checks=tuple(checks), notes=tuple(notes),
    )


def _samples(errors: Mapping[str, ErrorAccumulator]) -> int:
    return max((acc.samples for acc in errors.values()), default=0)
