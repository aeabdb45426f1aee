"""The typed result of comparing INT8 with its FP32 reference: checks, per-pair results, the report.

A `PairComparison` is truthy when every tolerance held and names the ones that did not; the
`ComparisonReport` collects them for one server and gives the JSON form the report stage writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from .agreement import OutputError


class BatchLike(Protocol):
    """One evaluation batch (generator.data.Batch): input name -> array, optional labels."""

    @property
    def inputs(self) -> Mapping[str, np.ndarray]: ...

    @property
    def labels(self) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Check:
    """One tolerance applied: `name` is the spec field (e.g. 'max_top1_drop')."""

    name: str
    value: float
    limit: float
    passed: bool
    detail: str


@dataclass(frozen=True)
class PairComparison:
    """One INT8 variant against its FP32 reference. Accuracies are fractions, the drop is in points."""

    model: str
    target: str
    reference: str
    candidate: str
    samples: int
    labelled: int
    classification_output: str | None
    reference_top1: float | None
    candidate_top1: float | None
    reference_top5: float | None
    candidate_top5: float | None
    top1_drop_points: float | None
    top1_agreement: float | None
    outputs: tuple[OutputError, ...]
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


@dataclass(frozen=True)
class ComparisonReport:
    """Every comparison made against one server; truthy when all passed."""

    server: str
    comparisons: tuple[PairComparison, ...]
    skipped: tuple[str, ...] = ()
    embedded: bool = False

    @property
    def passed(self) -> bool:
        return all(self.comparisons)

    def __bool__(self) -> bool:
        return self.passed

    def failures(self) -> list[str]:
        """'mnist_int8: max_top1_drop: top-1 drop 1.20 points > 0.5' for every missed threshold."""
        return [f"{pair.candidate}: {check.name}: {check.detail}" for pair in self.comparisons for check in pair.failures]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite floats (SQNR of identical outputs) become 'inf' / '-inf' / 'nan'."""
        data = _jsonable(asdict(self))
        data["passed"] = self.passed
        for pair, item in zip(self.comparisons, data["comparisons"]):
            item["passed"] = pair.passed
        return data

    def summary(self) -> str:
        """A few readable lines per comparison, for the terminal."""
        lines = [f"INT8 vs FP32 on {'the embedded Triton at ' if self.embedded else 'Triton at '}{self.server}"]
        for pair in self.comparisons:
            lines.append(f"{pair.candidate} vs {pair.reference} ({pair.target}), {pair.samples} samples: {'PASS' if pair else 'FAIL'}")
            if pair.reference_top1 is not None and pair.candidate_top1 is not None:
                top5 = ""
                if pair.reference_top5 is not None and pair.candidate_top5 is not None:
                    top5 = f"; top-5 {pair.reference_top5:.2%} -> {pair.candidate_top5:.2%}"
                lines.append(f"  top-1 {pair.reference_top1:.2%} -> {pair.candidate_top1:.2%} (drop {pair.top1_drop_points:.2f} points){top5}")
            if pair.top1_agreement is not None:
                lines.append(f"  top-1 agreement {pair.top1_agreement:.2%} ({pair.classification_output})")
            for out in pair.outputs:
                lines.append(
                    f"  {out.name}: max |err| {out.max_abs_error:.4g}, mean |err| {out.mean_abs_error:.4g}, "
                    f"cosine {out.cosine:.5f} (worst {out.min_cosine:.5f}), SQNR {out.sqnr_db:.1f} dB"
                )
            lines.extend(f"  FAILED {check.name}: {check.detail}" for check in pair.failures)
            lines.extend(f"  note: {note}" for note in pair.notes)
        lines.extend(f"skipped: {note}" for note in self.skipped)
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value
