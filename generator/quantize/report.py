"""Sensitivity and fallback results as a printed table, JSON and a PNG bar chart."""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes
from .sensitivity import Fallback, Ranking


def ranking_table(ranking: Ranking) -> str:
    """Ranked table: tensor, metric with the tensor toggled, delta (points), output error."""
    toggled = "kept float" if ranking.mode == "loo" else "only INT8"
    delta = "gain" if ranking.mode == "loo" else "drop"
    head = (
        f"{ranking.metric} on {ranking.samples} samples: FP32 {ranking.fp32.metric:.2f}, all INT8 "
        f"{ranking.int8.metric:.2f} (mode {ranking.mode})"
    )
    width = max([len("tensor"), *(len(e.tensor) for e in ranking.entries)])
    rows = [head, f"{'#':>3}  {'tensor':<{width}}  {ranking.metric + ' ' + toggled:>18}  {delta:>7}  {'out err':>9}"]
    for i, e in enumerate(ranking.entries, 1):
        rows.append(f"{i:>3}  {e.tensor:<{width}}  {e.score.metric:>18.2f}  {e.delta:>+7.2f}  {e.score.error:>9.2e}")
    return "\n".join(rows)


def ranking_json(ranking: Ranking, fallback: Fallback | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mode": ranking.mode,
        "metric": ranking.metric,
        "samples": ranking.samples,
        "fp32": asdict(ranking.fp32),
        "int8": asdict(ranking.int8),
        "base_keep_float": list(ranking.base_keep),
        "entries": [
            {"rank": i, "tensor": e.tensor, "delta": e.delta, "error_delta": e.error_delta, **asdict(e.score)}
            for i, e in enumerate(ranking.entries, 1)
        ],
    }
    if fallback is not None:
        data["fallback"] = {
            "target_drop": fallback.target_drop,
            "met": fallback.met,
            "keep_float": list(fallback.keep_float),
            "steps": [{"kept": s.kept, "drop": s.drop, **asdict(s.score)} for s in fallback.steps],
        }
    return data


def ranking_plot(ranking: Ranking, path: Path) -> None:
    """Horizontal bars of each tensor's delta, most sensitive on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = list(ranking.entries)[::-1]
    names = [e.tensor for e in entries]
    fig, (left, right) = plt.subplots(
        1, 2, sharey=True, figsize=(10, max(2.5, 0.3 * len(entries) + 1.2)), gridspec_kw={"width_ratios": [3, 2]}
    )
    left.barh(names, [e.delta for e in entries], color="tab:red")
    what = "gain when kept float" if ranking.mode == "loo" else "drop when only it is INT8"
    left.set_xlabel(f"{ranking.metric} {what} (points)")
    left.tick_params(axis="y", labelsize=7)
    right.barh(names, [max(e.score.error, 1e-12) for e in entries], color="tab:blue")
    right.set_xscale("log")
    right.set_xlabel("output error vs FP32 (relative MSE)")
    fig.suptitle(f"INT8 sensitivity ({ranking.mode}): FP32 {ranking.fp32.metric:.2f}, INT8 {ranking.int8.metric:.2f}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
