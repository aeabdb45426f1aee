"""Calibration report: a markdown table always; per-tensor histogram figures and an overview when asked.

`README.md` lists every tensor's threshold, ratio to the max, divergence, error and guard verdict.
With plots (spec `calibration.plots: true`) each tensor also gets a PNG figure (title naming the
tensor, axes labelled log10(count + 1) over |x|, a legend for the threshold, the largest |x| and
a threshold the guard rejected) and `overview.png` holds all of them in a grid. The grid is drawn
once and each tensor's PNG is cut out of it around its panel (one figure per tensor costs ~0.1 s
each); titles are placed by hand and ticks fixed, which skips matplotlib's two costliest layout
passes. matplotlib is imported only when plots are asked for, drawn with Agg through its object
API (no pyplot state, safe off the main thread).
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
CROP_MARGINS_IN = (0.62, 0.3, 0.5, 0.55)  # left, right, below, above an axes: its labels and title
THRESHOLD_COLOUR, MAX_COLOUR, REJECTED_COLOUR = "#c44e52", "0.3", "#dd8452"
LINES = "red line: threshold (amax); grey dashed: largest |x|; orange dotted: entropy threshold the guard rejected"


def plot_name(index: int, tensor: str) -> str:
    """A safe, ordered file name for a tensor's plot: '03_block_Relu_output_0.png'."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tensor).strip("_.")[:80] or "tensor"
    return f"{index:02d}_{safe}.png"


def write_report(
    folder: Path, histograms: Mapping[str, Histogram], results: Mapping[str, AmaxResult], *, title: str, plots: bool = True
) -> None:
    """README.md table into `folder` (created); with `plots`, a PNG per tensor and the overview grid too."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(_table(title, results, plots=plots), encoding="utf-8")
    if plots and results:
        _write_plots(folder, histograms, results, title=title)


def _write_plots(folder: Path, histograms: Mapping[str, Histogram], results: Mapping[str, AmaxResult], *, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's global state
    from matplotlib.figure import Figure
    from PIL import Image

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
    figure.suptitle(title, fontsize=10, y=1 - 0.12 / height_in, va="top")
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


def _draw(axis: Any, hist: Histogram, result: AmaxResult, name: str) -> None:
    """One panel: a figure of its own once cut out (title, labelled axes, legend)."""
    from matplotlib.ticker import FixedLocator

    top = 1.0
    if hist.total and hist.width > 0:
        counts = hist.counts
        group = max(1, math.ceil(len(counts) / PLOT_BINS))
        summed = np.pad(counts, (0, (-len(counts)) % group)).reshape(-1, group).sum(axis=1)
        heights = np.log10(summed + 1.0)
        top = max(1.0, float(heights.max()))
        edges = np.arange(len(summed) + 1) * hist.width * group
        axis.fill_between(edges, np.append(heights, heights[-1]), step="post", color="#4c72b0", linewidth=0, label="|x| histogram")
    right = max(result.max, result.amax, hist.width * len(hist.counts), 1e-12)
    axis.axvline(result.amax, color=THRESHOLD_COLOUR, linewidth=1.5, label=f"threshold {result.amax:.4g} ({result.method})")
    axis.axvline(result.max, color=MAX_COLOUR, linestyle="--", linewidth=1, label=f"largest |x| {result.max:.4g}")
    if result.guarded and result.rejected_amax is not None:
        axis.axvline(result.rejected_amax, color=REJECTED_COLOUR, linestyle=":", linewidth=1.5,
                     label=f"entropy {result.rejected_amax:.4g} (rejected)")
    axis.set_xlim(0.0, right * 1.02)
    axis.set_ylim(0.0, top * 1.08)
    axis.xaxis.set_major_locator(FixedLocator([0.0, right / 2, right]))
    axis.yaxis.set_major_locator(FixedLocator([0.0, round(top / 2, 1), round(top, 1)]))
    shown = name if len(name) <= 60 else "…" + name[-59:]
    axis.set_title(f"{shown}\namax / max = {result.amax / result.max:.3f}" if result.max > 0 else shown, fontsize=8.5, y=1.02)
    axis.set_xlabel("|x|", fontsize=8, labelpad=1)
    axis.set_ylabel("log10(count + 1)", fontsize=8, labelpad=1)
    axis.tick_params(labelsize=7, pad=1)
    axis.legend(loc="upper right", fontsize=6.5, frameon=False, handlelength=1.5, borderaxespad=0.2)


def _table(title: str, results: Mapping[str, AmaxResult], *, plots: bool) -> str:
    lines = [
        f"# {title}",
        "",
        "Per activation tensor: the chosen threshold (amax, scale = amax / 127), the largest |x| seen, "
        "the method whose threshold was used, the KL divergence at the entropy threshold, the expected "
        "quantisation MSE at amax, and whether the entropy guard replaced a threshold clipped at a spike. "
        + (f"Plots: log counts of |x|; {LINES}." if plots else "Plots: off (calibration.plots: true draws them)."),
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
            f"{r.mse:.3g} | {guarded} | {f'[png]({plot_name(index, name)})' if plots else '-'} |"
        )
    lines += ["", "![overview](overview.png)", ""] if plots else [""]
    return "\n".join(lines)
