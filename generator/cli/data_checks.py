"""Front-door checks of the data a spec names: shapes and dtypes against the model, labels, NaN/Inf.

The data is read exactly as calibration and evaluation will read it (`load_batches`, preprocessing
applied, every batch checked for shapes, dtypes and NaN/Inf), so a problem is named as the data's,
before any stage starts. `callable` sources are not
run here: their code runs once, in the stage that needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import GeneratorError

if TYPE_CHECKING:
    from ..signature import Signature

Finding = tuple[str, str | None]  # message, sub-field of the data block (or None)


SCAN_LIMIT = 4096
"""The front door reads at most this many samples of a data block (the rest is checked as it streams)."""


def check_data(source: Any, signature: Signature, *, classes: int | None, samples: int | None) -> tuple[list[Finding], int | None]:
    """Problems of one data block, and how many samples were read (None when not read).

    Arrays are read (up to `SCAN_LIMIT` samples: memory-mapped, cheap); of an image folder the first
    8 images are decoded and the class subfolders counted (decoding all would make every command
    slow); callables are not run.
    """
    if source.kind == "callable":
        return [], None
    from ..data.batches import (
        load_batches,  # checks shapes, dtypes and NaN/Inf of every batch
    )

    findings: list[Finding] = []
    seen = 0
    label_problem = False
    images = source.kind == "images"
    limit = 8 if images else min(samples, SCAN_LIMIT) if samples is not None else SCAN_LIMIT
    try:
        for batch in load_batches(source, signature, batch_size=8 if images else 256, limit=limit):
            if batch.labels is not None and not label_problem and not images:
                label_problem = _check_labels(batch.labels, classes, seen, findings)
            seen += len(batch)
    except GeneratorError as exc:
        findings.append((exc.message, None))
        return findings, None
    if images:
        findings += _check_image_classes(source, classes)
    return findings, seen


def _check_labels(labels: Any, classes: int | None, offset: int, findings: list[Finding]) -> bool:
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim > 1 and labels[0].size > 1:
        return False  # per-sample sequences or boxes (CTC, detection): the task metric reads them, not class indices
    labels = labels.reshape(len(labels)) if labels.ndim > 1 else labels
    if labels.dtype.kind not in "iu":
        findings.append((f"labels must be integers (class indices), got dtype {labels.dtype}", "labels"))
        return True
    outside = (labels < 0) | ((labels >= classes) if classes is not None else False)
    if np.any(outside):
        first = int(np.argmax(outside))
        limit = f"0..{classes - 1}" if classes is not None else ">= 0"
        message = (f"label {int(labels[first])} at sample {offset + first} is outside the model's classes ({limit}): "
                   "accuracy would be 0 %; fix the labels or the model")
        findings.append((message, "labels"))
        return True
    return False


def _check_image_classes(source: Any, classes: int | None) -> list[Finding]:
    """With `labels: subfolders` each subfolder is a class: more subfolders than the model's classes is an error."""
    if source.labels != "subfolders" or classes is None or not source.path.is_dir():
        return []
    folders = sorted(p.name for p in source.path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) > classes:
        return [(f"{len(folders)} class subfolders but the model has {classes} classes: labels {classes} and above "
                 "would never be right; fix the folders or the model", "labels")]
    return []
