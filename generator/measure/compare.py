"""INT8 against its FP32 reference on the live server: which pairs, fed the evaluation set through Triton.

For every INT8 variant, the reference is the FP32 variant of the same model and target. Both are
fed the model's evaluation set through Triton (gRPC), so what is judged is what is deployed. Result
types live in `comparison`, the statistics and tolerance checks in `pair_stats`, the gRPC side in
`remote`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import GeneratorError
from ..serve.handle import ServerHandle
from ..spec import ResolvedVariant, Spec, Tolerances
from .comparison import BatchLike, Check, ComparisonReport, PairComparison
from .pair_stats import PairStats
from .remote import RemoteModel

EMBEDDED_TARGETS = ("python-onnxruntime",)  # what the bundled server (python backend only) can serve

__all__ = [
    "EMBEDDED_TARGETS", "BatchLike", "Check", "ComparisonReport", "PairComparison", "PairStats", "compare_pair",
    "compare_spec", "comparison_pairs",
]


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
        ref, cand = RemoteModel(handle, client, reference), RemoteModel(handle, client, candidate)
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
