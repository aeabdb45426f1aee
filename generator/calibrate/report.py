"""Calibration report: per-tensor histogram plots with the chosen threshold, and a markdown table.

Writes into a folder: one PNG per tensor (log counts over |x|; a solid line at the threshold, a
dashed one at the max, a dotted one at entropy's threshold when the guard rejected it),
`overview.png` (all tensors in a grid) and `README.md` (thresholds, ratio to the max, divergence,
error, guarded). matplotlib is imported lazily and drawn with Agg through its object API (no
pyplot state, safe off the main thread).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .calibrators import AmaxResult
from .histogram import Histogram

PLOT_BINS = 256  # histograms are summed down to this many bars for plotting (fast, still readable)
DPI = 90
CROP_MARGINS_IN = (0.62, 0.12, 0.5, 0.45)  # left, right, below, above an axes: its labels and title
THRESHOLD_COLOUR, MAX_COLOUR, REJECTED_COLOUR = "#c44e52", "0.3", "#dd8452"
LINES = "red line: threshold (amax); grey dashed: largest |x|; orange dotted: entropy threshold the guard rejected"


def plot_name(index: int, tensor: str) -> str:
    """A safe, ordered file name for a tensor's plot: '03_block_Relu_output_0.png'."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tensor).strip("_.")[:80] or "tensor"
    return f"{index:02d}_{safe}.png"


def write_report(folder: Path, histograms: Mapping[str, Histogram], results: Mapping[str, AmaxResult], *, title: str) -> None:
    """PNG per tensor, overview grid and README.md table into `folder` (created).

    The grid is drawn once; each tensor's PNG is cut out of it around its panel, which keeps the
    report well under a second for tens of tensors (a figure per tensor costs ~0.1 s each).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's global state
    from matplotlib.figure import Figure
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = list(results)
    columns = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    height_in = 3.0 * rows + 0.7
    figure = Figure(figsize=(5.2 * columns, height_in), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.5 / height_in, top=1 - 0.95 / height_in, wspace=0.28, hspace=0.75)
    for index, axis in enumerate(axes.flat):
        if index < len(names):
            _draw(axis, histograms[names[index]], results[names[index]], names[index])
        else:
            axis.axis("off")
    figure.suptitle(f"{title}\n{LINES}", fontsize=10)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    Image.fromarray(pixels).convert("RGB").save(folder / "overview.png", optimize=False)
    height, width = pixels.shape[:2]
    left, right, below, above = (int(m * DPI) for m in CROP_MARGINS_IN)
    for index, name in enumerate(names):
        box = axes.flat[index].bbox  # display pixels, origin bottom left; margins hold labels and title
        x0, x1 = max(0, int(box.x0) - left), min(width, int(math.ceil(box.x1)) + right)
        y0, y1 = max(0, height - int(math.ceil(box.y1)) - above), min(height, height - int(box.y0) + below)
        Image.fromarray(pixels[y0:y1, x0:x1]).convert("RGB").save(folder / plot_name(index, name))
    (folder / "README.md").write_text(_table(title, results), encoding="utf-8")


def _draw(axis: Any, hist: Histogram, result: AmaxResult, name: str) -> None:
    """One panel. Kept cheap (fill_between, few ticks, no legend): matplotlib text dominates the cost."""
    if hist.total and hist.width > 0:
        counts = hist.counts
        group = max(1, math.ceil(len(counts) / PLOT_BINS))
        summed = np.pad(counts, (0, (-len(counts)) % group)).reshape(-1, group).sum(axis=1)
        heights = np.log10(summed + 1.0)
        edges = np.arange(len(summed) + 1) * hist.width * group
        axis.fill_between(edges, np.append(heights, heights[-1]), step="post", color="#4c72b0", linewidth=0)
    axis.axvline(result.amax, color=THRESHOLD_COLOUR, linewidth=1.5)
    axis.axvline(result.max, color=MAX_COLOUR, linestyle="--", linewidth=1)
    how = result.method
    if result.guarded and result.rejected_amax is not None:
        axis.axvline(result.rejected_amax, color=REJECTED_COLOUR, linestyle=":", linewidth=1.5)
        how += f", guarded: entropy {result.rejected_amax:.4g} rejected"
    shown = name if len(name) <= 60 else "…" + name[-59:]
    axis.set_title(f"{shown}\namax {result.amax:.4g} ({how}), max {result.max:.4g}", fontsize=8.5)
    axis.set_xlabel("|x|", fontsize=8)
    axis.set_ylabel("log10(count + 1)", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.locator_params(nbins=4)


def _table(title: str, results: Mapping[str, AmaxResult]) -> str:
    lines = [
        f"# {title}",
        "",
        "Per activation tensor: the chosen threshold (amax, scale = amax / 127), the largest |x| seen, "
        "the method whose threshold was used, the KL divergence at the entropy threshold, the expected "
        "quantisation MSE at amax, and whether the entropy guard replaced a threshold clipped at a spike. "
        f"Plots: log counts of |x|; {LINES}.",
        "",
        "| # | tensor | amax | max | amax / max | method | divergence | MSE | guarded | plot |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, (name, r) in enumerate(results.items()):
        ratio = f"{r.amax / r.max:.3f}" if r.max > 0 else "-"
        divergence = f"{r.divergence:.3g}" if r.divergence is not None else "-"
        guarded = f"yes (entropy {r.rejected_amax:.4g})" if r.guarded and r.rejected_amax is not None else "no"
        lines.append(
            f"| {index} | `{name}` | {r.amax:.5g} | {r.max:.5g} | {ratio} | {r.method} | {divergence} | "
            f"{r.mse:.3g} | {guarded} | [png]({plot_name(index, name)}) |"
        )
    lines += ["", "![overview](overview.png)", ""]
    return "\n".join(lines)
