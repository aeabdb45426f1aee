"""INT8 against its FP32 reference on the live server: task metrics, agreement, error statistics.

For every INT8 variant, the reference is the FP32 variant of the same model and target. Both are
fed the model's evaluation set through Triton (gRPC), so what is judged is what is deployed. The
result is a typed `ComparisonReport` that is truthy when every tolerance held and names the ones
that did not; `to_dict()` gives the JSON form the report stage writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import GeneratorError
from ..serve.handle import ServerHandle
from ..spec import ResolvedVariant, Spec, Tolerances
from .agreement import ErrorAccumulator, OutputError, TopKCounter, class_scores

EMBEDDED_TARGETS = ("python-onnxruntime",)  # what the bundled server (python backend only) can serve


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


# ---- which variants to compare ------------------------------------------------------------------


def comparison_pairs(
    spec: Spec, *, model: str | None = None, embedded: bool = True
) -> tuple[list[tuple[ResolvedVariant, ResolvedVariant]], list[str]]:
    """(FP32 reference, INT8 candidate) pairs, and notes on the INT8 variants left out and why.

    `model` selects a spec model name or one INT8 variant name. `embedded`: only targets the bundled
    server can serve (python backend); others need an external Triton (--url).
    """
    resolved = spec.resolved()
    int8 = [rv for rv in resolved if rv.precision == "int8"]
    if model is not None:
        int8 = [rv for rv in int8 if model in (rv.model.name, rv.name)]
        if not int8:
            known = sorted({rv.model.name for rv in resolved} | {rv.name for rv in resolved if rv.precision == "int8"})
            raise GeneratorError(f"--model {model!r} names no model with int8 variants (known: {', '.join(known)})")
    pairs: list[tuple[ResolvedVariant, ResolvedVariant]] = []
    skipped: list[str] = []
    for candidate in int8:
        if candidate.model.evaluation is None:
            skipped.append(f"{candidate.name}: model {candidate.model.name!r} has no 'evaluation' block (data and tolerances)")
            continue
        if embedded and candidate.target not in EMBEDDED_TARGETS:
            skipped.append(f"{candidate.name}: target {candidate.target} needs a full Triton server; compare it with --url")
            continue
        reference = next((rv for rv in resolved if rv.model is candidate.model and rv.precision == "fp32" and rv.target == candidate.target), None)
        if reference is None:
            raise GeneratorError(
                f"{candidate.name}: no fp32 variant of model {candidate.model.name!r} on target {candidate.target} "
                "to compare against; add one to the model's variants"
            )
        pairs.append((reference, candidate))
    if not pairs:
        reason = "; ".join(skipped) if skipped else "no int8 variants in the spec"
        raise GeneratorError(f"nothing to compare: {reason}")
    return pairs, skipped


# ---- talking to the server ----------------------------------------------------------------------


class _Remote:
    """One served model as seen over gRPC: its inputs, outputs and batch limit, and `run`."""

    def __init__(self, handle: ServerHandle, client: Any, name: str) -> None:
        from tritonclient.utils import InferenceServerException, triton_to_np_dtype

        self.handle, self.client, self.name = handle, client, name
        try:
            metadata = client.get_model_metadata(name, as_json=True)
            config = client.get_model_config(name, as_json=True).get("config", {})
        except InferenceServerException as exc:
            raise handle.failure(f"reading the metadata of model {name!r}", exc) from None
        self.inputs = {t["name"]: (t["datatype"], triton_to_np_dtype(t["datatype"])) for t in metadata["inputs"]}
        self.outputs = [t["name"] for t in metadata["outputs"]]
        self.max_batch_size = int(config.get("max_batch_size", 0))

    def run(self, inputs: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        """All outputs for a batch; split into requests of at most max_batch_size samples."""
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise GeneratorError(f"evaluation data has no input {', '.join(map(repr, missing))} for model {self.name!r} (it gives: {', '.join(inputs)})")
        count = len(next(iter(inputs.values()))) if inputs else 0
        step = self.max_batch_size if self.max_batch_size > 0 else max(count, 1)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for start in range(0, max(count, 1), step):
            chunk = {name: np.ascontiguousarray(np.asarray(inputs[name])[start:start + step], dtype=dtype) for name, (_, dtype) in self.inputs.items()}
            result = self._infer(chunk, what)
            for name in self.outputs:
                parts[name].append(result[name])
        return {name: np.concatenate(values, axis=0) for name, values in parts.items()}

    def _infer(self, chunk: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        requests = []
        for name, array in chunk.items():
            request = grpcclient.InferInput(name, list(array.shape), self.inputs[name][0])
            request.set_data_from_numpy(array)
            requests.append(request)
        outputs = [grpcclient.InferRequestedOutput(name) for name in self.outputs]
        try:
            response = self.client.infer(self.name, requests, outputs=outputs)
        except InferenceServerException as exc:
            raise self.handle.failure(f"running {self.name!r} on {what}", exc) from None
        return {name: response.as_numpy(name) for name in self.outputs}


# ---- the comparison -----------------------------------------------------------------------------


def compare_pair(
    handle: ServerHandle,
    reference: str,
    candidate: str,
    batches: Iterable[BatchLike],
    *,
    tolerances: Tolerances,
    metrics: Sequence[str] = ("top1", "top5", "agreement", "error"),
    model: str = "",
    target: str = "",
    progress: bool = False,
) -> PairComparison:
    """Feed every batch to both served models and judge `candidate` against `reference`."""
    from tqdm import tqdm

    client = handle.grpc_client()
    try:
        ref, cand = _Remote(handle, client, reference), _Remote(handle, client, candidate)
        if sorted(ref.outputs) != sorted(cand.outputs):
            raise GeneratorError(f"{candidate!r} has outputs {cand.outputs} but its reference {reference!r} has {ref.outputs}")
        stats = PairStats(ref.outputs)
        with tqdm(desc=f"compare {candidate}", unit="sample", disable=not progress, leave=False) as bar:
            for index, batch in enumerate(batches):
                what = f"evaluation batch {index}"
                ref_out = ref.run(batch.inputs, what)
                stats.update(ref_out, cand.run(batch.inputs, what), batch.labels)
                bar.update(len(ref_out[ref.outputs[0]]))
    finally:
        client.close()
    return stats.judge(model=model, target=target, reference=reference, candidate=candidate, tolerances=tolerances, metrics=metrics)


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


def compare_spec(
    handle: ServerHandle, pairs: Sequence[tuple[ResolvedVariant, ResolvedVariant]],
    *, skipped: Sequence[str] = (), progress: bool = True,
) -> ComparisonReport:
    """Compare each pair on its model's evaluation set (same data pipeline as calibration)."""
    from ..data import evaluation_batches

    results = []
    for reference, candidate in pairs:
        evaluation = candidate.model.evaluation
        assert evaluation is not None  # comparison_pairs leaves such models out
        batches = evaluation_batches(candidate.model)
        results.append(
            compare_pair(
                handle, reference.name, candidate.name, batches, tolerances=evaluation.tolerances,
                metrics=evaluation.metrics, model=candidate.model.name, target=candidate.target, progress=progress,
            )
        )
    return ComparisonReport(server=handle.grpc_url, comparisons=tuple(results), skipped=tuple(skipped), embedded=handle.embedded)
