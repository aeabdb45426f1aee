"""Streaming histogram of |x| for one activation tensor, updated batch by batch.

The first batch with a non-zero value fixes the bin width (its max |x| / 2048). A later batch that
exceeds the range appends bins of the same width (as TensorRT and pytorch-quantization do), so counts
are never re-binned or interpolated. Only if a huge outlier would need more than `MAX_BINS` bins are
adjacent bins merged in exact pairs (a lossless coarsening that keeps memory bounded).
Signed min/max and the exact max |x| are tracked beside the counts.
"""

from __future__ import annotations

import threading

import numpy as np

NUM_BINS = 2048
MAX_BINS = 1 << 20
CHUNK = 1 << 16  # values binned per step (two buffers of this many: 768 KiB, cache-sized)

_local = threading.local()


def _buffers() -> tuple[np.ndarray, np.ndarray]:
    """This thread's scratch buffers (float32 |x| / width, intp bin index); threads never share them."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = (np.empty(CHUNK, dtype=np.float32), np.empty(CHUNK, dtype=np.intp))
    return buffers


class NonFiniteError(ValueError):
    """An update saw NaN or Inf; `kind` says which."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Histogram:
    """Counts of |x| in bins [k*width, (k+1)*width); the last bin also holds its upper edge."""

    def __init__(self, num_bins: int = NUM_BINS, *, max_bins: int = MAX_BINS) -> None:
        self.num_bins = num_bins
        self.max_bins = max(max_bins, num_bins)
        self.counts = np.zeros(0, dtype=np.int64)
        self.width = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.amax = 0.0  # exact max |x|
        self.total = 0
        self._zeros = 0  # values seen while every value so far was 0 (no width yet)

    @property
    def edges(self) -> np.ndarray:
        return np.arange(len(self.counts) + 1, dtype=np.float64) * self.width

    def update(self, x: np.ndarray) -> None:
        """Add one batch. Raises `NonFiniteError` (nothing added) if `x` holds NaN or Inf."""
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise NonFiniteError("NaN" if np.isnan(x).any() else "Inf")
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        batch_amax = max(-lo, hi)
        self.amax = max(self.amax, batch_amax)
        self.total += x.size
        if batch_amax == 0.0:
            if self.width == 0.0:
                self._zeros += x.size
            else:
                self.counts[0] += x.size
            return
        if self.width == 0.0:
            self.width = batch_amax / self.num_bins
            self.counts = np.zeros(self.num_bins, dtype=np.int64)
            self.counts[0] += self._zeros
        elif batch_amax > len(self.counts) * self.width:
            self._extend(int(np.floor(batch_amax / self.width)) + 1)
        self._count(x.reshape(-1))

    def _count(self, flat: np.ndarray) -> None:
        """Bin |x| / width, `CHUNK` values at a time through two reused cache-sized buffers.

        Whole-array temporaries (|x| in float32, then indices in intp: 12 bytes per value) would
        page-fault in fresh memory on every update and double the working set; this stays in L2.
        """
        n = len(self.counts)
        inv = np.float32(1.0 / self.width)
        scaled, index = _buffers()
        found = np.zeros(n, dtype=np.int64)
        for start in range(0, flat.size, CHUNK):
            part = flat[start : start + CHUNK]
            size = part.size
            np.abs(part, out=scaled[:size], dtype=np.float32)
            np.multiply(scaled[:size], inv, out=scaled[:size])
            np.copyto(index[:size], scaled[:size], casting="unsafe")  # truncation = floor (non-negative)
            counted = np.bincount(index[:size], minlength=n)
            found += counted[:n]
            if len(counted) > n:  # values on the top edge (float rounding)
                found[-1] += counted[n:].sum()
        self.counts += found

    def _extend(self, bins: int) -> None:
        while bins > self.max_bins:
            counts = self.counts if len(self.counts) % 2 == 0 else np.append(self.counts, 0)
            self.counts = counts.reshape(-1, 2).sum(axis=1)
            self.width *= 2.0
            bins = (bins + 1) // 2
        self.counts = np.concatenate([self.counts, np.zeros(bins - len(self.counts), dtype=np.int64)])
