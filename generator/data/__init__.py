"""Stage 0b: data sources. A spec's `data` block -> batches of named input arrays (and labels).

Calibration, sensitivity, evaluation and the live comparison all read their data through
`load_batches` / `evaluation_batches`, so one preprocessing pipeline feeds every stage.
"""

from .batches import Batch, evaluation_batches, load_arrays, load_batches

__all__ = ["Batch", "evaluation_batches", "load_arrays", "load_batches"]
