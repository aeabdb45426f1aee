"""PNG plots of benchmark results (matplotlib, Agg backend, imported only when plotting).

Throughput and latency percentiles against concurrency with every variant side by side, and for
request-rate runs the achieved rate and latency against the offered rate. Unstable or incomplete
points are drawn hollow so a reader does not take them at face value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import BenchResult

_PERCENTILES = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p95_ms", "p95"), ("p99_ms", "p99"))


def _series(results: Sequence[BenchResult], mode: str) -> dict[str, list[BenchResult]]:
    """Results of one mode grouped into lines: one per variant (and protocol/batch/shm if they vary)."""
    chosen = [r for r in results if r.mode == mode]
    varying = [
        key for key in ("protocol", "batch_size", "shared_memory") if len({getattr(r, key) for r in chosen}) > 1
    ]
    lines: dict[str, list[BenchResult]] = defaultdict(list)
    for result in chosen:
        name = result.variant + (f" ({result.precision})" if result.precision and result.precision not in result.variant else "")
        extra = " ".join(f"{key}={getattr(result, key)}" for key in varying)
        lines[f"{name} {extra}".strip()].append(result)
    return {label: sorted(points, key=lambda r: r.level) for label, points in lines.items()}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log2_axis(ax: Any, levels: list[float]) -> None:
    """Concurrency on a log2 axis, ticks labelled with the levels themselves (1, 8, 32)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(levels))))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:g}")


def _plot_line(ax: Any, xs: list[float], ys: list[float], clean: list[bool], label: str, **style: Any) -> None:
    (line,) = ax.plot(xs, ys, marker="o", label=label, **style)
    for x, y, ok in zip(xs, ys, clean):
        if not ok:  # hollow marker: unstable, incomplete or with errors
            ax.plot([x], [y], marker="o", markerfacecolor="white", color=line.get_color(), linestyle="none")


def plot_concurrency(results: Sequence[BenchResult], out_dir: Path) -> list[Path]:
    """throughput_vs_concurrency.png and latency_vs_concurrency.png (one panel per variant)."""
    lines = _series(results, "concurrency")
    if not lines:
        return []
    plt = _pyplot()
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        _plot_line(ax, [r.level for r in points], [r.infer_per_s for r in points], [bool(r) for r in points], label)
    _log2_axis(ax, [r.level for points in lines.values() for r in points])
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("throughput (inferences/s)")
    ax.set_title("Throughput vs concurrency (hollow: unstable or failed)")
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "throughput_vs_concurrency.png", plt))

    fig, axes = plt.subplots(1, len(lines), figsize=(4.5 * len(lines), 4.2), sharey=True, squeeze=False)
    for ax, (label, points) in zip(axes[0], lines.items()):
        xs = [r.level for r in points]
        for field, name in _PERCENTILES:
            _plot_line(ax, xs, [getattr(r.latency, field) for r in points], [bool(r) for r in points], name)
        _log2_axis(ax, xs)
        ax.set_title(label)
        ax.set_xlabel("concurrency")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("latency (ms)")
    axes[0][0].set_ylim(bottom=0)
    axes[0][-1].legend()
    fig.suptitle("Client latency percentiles vs concurrency")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "latency_vs_concurrency.png", plt))
    return paths


def plot_request_rate(results: Sequence[BenchResult], out_dir: Path) -> list[Path]:
    """request_rate.png: achieved rate and p50/p99 latency against the offered rate."""
    lines = _series(results, "request_rate")
    if not lines:
        return []
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    top = max(r.level for points in lines.values() for r in points)
    left.plot([0, top], [0, top], color="grey", linestyle=":", label="offered")
    for label, points in lines.items():
        xs = [r.level for r in points]
        clean = [bool(r) for r in points]
        _plot_line(left, xs, [r.achieved_rate for r in points], clean, label)
        _plot_line(right, xs, [r.latency.p99_ms for r in points], clean, f"{label} p99")
        _plot_line(right, xs, [r.latency.p50_ms for r in points], clean, f"{label} p50", linestyle="--")
    left.set_xlabel("offered rate (requests/s)")
    left.set_ylabel("achieved send rate (requests/s)")
    right.set_xlabel("offered rate (requests/s)")
    right.set_ylabel("latency (ms)")
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Request-rate mode (open loop)")
    fig.tight_layout()
    return [_save(fig, out_dir / "request_rate.png", plt)]


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
