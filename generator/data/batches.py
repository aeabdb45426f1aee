"""Calibration and evaluation data as a stream of validated batches (`load_batches`).

One entry point for every `DataSource` kind, so calibration and evaluation see exactly the same
samples with exactly the same preprocessing:

- arrays: a `.npy` (one model input) or `.npz` (one key per input, plus an optional labels key).
  Arrays are read row block by row block (a `.npy` is memory-mapped, an `.npz` member is streamed
  from the zip), so memory does not grow with the file size.
- images: a folder of image files decoded with Pillow (see `generator.data.images`).
- callable: `package.module:function(**args)` yielding dicts of input name -> batch array (and an
  optional "labels" key). This imports and runs the user's code: only use specs you trust.

Every batch is checked against the model's `Signature` (rank, fixed dimensions, dtype); a mismatch,
an empty data set or a failing callable is a one-line `GeneratorError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature, TensorSig, numpy_dtype, read_onnx_signature
from ..spec.data import ArraysSource, CallableSource, ImagesSource
from ..spec.model import ModelSpec
from .arrays import Chunk, array_chunks
from .callables import callable_chunks


@dataclass(frozen=True)
class Batch:
    """One batch: model input name -> array (batch on axis 0), and integer labels when the source has them."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))


def evaluation_batches(model: ModelSpec) -> Iterator[Batch]:
    """The model's evaluation set, batched and preprocessed as its `evaluation` block says."""
    evaluation = model.evaluation
    if evaluation is None:
        raise GeneratorError(f"model {model.name!r} has no 'evaluation' block: add one (data and tolerances)")
    signature = read_onnx_signature(model.onnx)
    return load_batches(evaluation.data, signature, batch_size=evaluation.batch_size, limit=evaluation.samples)


def load_batches(
    source: ArraysSource | ImagesSource | CallableSource,
    signature: Signature,
    *,
    batch_size: int,
    limit: int | None = None,
) -> Iterator[Batch]:
    """Yield batches of `batch_size` samples (the last may be smaller), at most `limit` samples in all.

    Raises `GeneratorError` for a data set with no samples, a batch whose shape or dtype does not
    match the model's inputs, or a data callable that fails.
    """
    if batch_size < 1:
        raise GeneratorError(f"batch_size must be at least 1, got {batch_size}")
    where = describe_source(source)
    if isinstance(source, ArraysSource):
        chunks: Iterable[Chunk] = array_chunks(source, signature, batch_size)
    elif isinstance(source, ImagesSource):
        from .images import image_chunks

        chunks = image_chunks(source, signature)
    else:
        chunks = callable_chunks(source, signature)
    seen = 0
    for batch in _rebatch(chunks, batch_size, limit):
        check_batch(batch, signature, where=where)
        seen += len(batch)
        yield batch
    if seen == 0:
        raise GeneratorError("the data set is empty (no samples): check the file, folder or callable", where=where)


def available_samples(source: ArraysSource | ImagesSource | CallableSource) -> int | None:
    """How many samples an arrays source holds, read from the file headers (None: not known before reading).

    Progress bars and the "asked for more samples than the data holds" note use it.
    """
    if not isinstance(source, ArraysSource):
        return None
    from .arrays import _ArrayFile

    try:
        with _ArrayFile(source.path) as arrays:
            if source.path.suffix == ".npy":
                return int(arrays.open(None).shape[0])
            key = next(iter((source.inputs or {}).values()), None) or source.labels
            if key is None:
                assert arrays.zip is not None
                key = next(n[:-4] for n in arrays.zip.namelist() if n.endswith(".npy"))
            return int(arrays.open(key, for_input=None).shape[0])
    except (GeneratorError, OSError, StopIteration, ValueError):
        return None  # reading it will say what is wrong


def describe_source(source: ArraysSource | ImagesSource | CallableSource) -> str:
    """Where a source's data comes from, for error messages."""
    return f"data callable {source.callable}" if isinstance(source, CallableSource) else str(source.path)


def expected_shape(tensor: TensorSig) -> str:
    """'(N, 1, 28, 28)': N for a dynamic batch dimension, ? for other dynamic dimensions."""
    dims = [("N" if i == 0 else "?") if d < 0 else str(d) for i, d in enumerate(tensor.shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def check_batch(batch: Batch, signature: Signature, *, where: str) -> None:
    """Refuse a batch whose inputs do not match the model (names, rank, fixed dimensions, dtype) or hold NaN/Inf."""
    names = {t.name for t in signature.inputs}
    for name in batch.inputs:
        if name not in names:
            known = ", ".join(sorted(names))
            raise GeneratorError(f"the data has an array for {name!r}, which is not a model input (inputs: {known})", where=where)
    for tensor in signature.inputs:
        if tensor.name not in batch.inputs:
            raise GeneratorError(f"no data for model input {tensor.name!r}", where=where)
        value = batch.inputs[tensor.name]
        shape_ok = value.ndim == len(tensor.shape) and all(e < 0 or e == g for e, g in zip(tensor.shape, value.shape))
        if not shape_ok:
            raise GeneratorError(
                f"input {tensor.name!r}: got shape {tuple(value.shape)}, expected {expected_shape(tensor)}", where=where
            )
        want = numpy_dtype(tensor.dtype)
        if value.dtype != want:
            raise GeneratorError(
                f"input {tensor.name!r}: got dtype {value.dtype}, expected {want} "
                "(set preprocessing.dtype, or preprocessing.scale to convert pixels)",
                where=where,
            )
        if value.dtype.kind in "fc" and not np.isfinite(value).all():  # named as the data's, not an activation's
            raise GeneratorError(
                f"input {tensor.name!r}: the data holds NaN or Inf values: the data is broken, not the model; "
                "fix or drop those samples", where=where,
            )
    if batch.labels is not None and len(batch.labels) != len(batch):
        raise GeneratorError(f"{len(batch.labels)} labels for {len(batch)} samples", where=where)


def _rebatch(chunks: Iterable[Chunk], batch_size: int, limit: int | None) -> Iterator[Batch]:
    """Regroup chunks of any size into batches of exactly `batch_size` (the last may be smaller)."""
    remaining = limit
    pending: list[Chunk] = []
    count = 0
    for inputs, labels in chunks:
        n = _chunk_len(inputs)
        if remaining is not None and n > remaining:
            inputs = {k: v[:remaining] for k, v in inputs.items()}
            labels = labels[:remaining] if labels is not None else None
            n = remaining
        if remaining is not None:
            remaining -= n
        pending.append((inputs, labels))
        count += n
        while count >= batch_size:
            merged_inputs, merged_labels = _concat(pending)
            yield Batch(
                {k: v[:batch_size] for k, v in merged_inputs.items()},
                merged_labels[:batch_size] if merged_labels is not None else None,
            )
            count -= batch_size
            rest = ({k: v[batch_size:] for k, v in merged_inputs.items()},
                    merged_labels[batch_size:] if merged_labels is not None else None)
            pending = [rest] if count else []
        if remaining is not None and remaining <= 0:
            break  # do not read (or run user code for) more than the limit needs
    if count:
        inputs, labels = _concat(pending)
        yield Batch(inputs, labels)


def _chunk_len(inputs: Mapping[str, np.ndarray]) -> int:
    lengths = {len(v) if v.ndim else 1 for v in inputs.values()}
    if len(lengths) != 1:
        raise GeneratorError(f"the inputs of one batch have different sample counts: {sorted(lengths)}")
    return lengths.pop()


def _concat(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    inputs = {k: np.concatenate([c[0][k] for c in chunks]) for k in chunks[0][0]}
    with_labels = [c[1] for c in chunks if c[1] is not None]
    labels = np.concatenate(with_labels) if len(with_labels) == len(chunks) else None
    return inputs, labels


def load_arrays(
    source: ArraysSource | ImagesSource | CallableSource, signature: Signature, *, batch_size: int, limit: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Every batch of `source` joined into whole arrays (input name -> array) and labels (None without).

    For the small data sets scored many times over (sensitivity, the accuracy budget); an empty
    source gives empty dicts, for the caller to name in its own error.
    """
    inputs: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    for batch in load_batches(source, signature, batch_size=batch_size, limit=limit):
        for name, value in batch.inputs.items():
            inputs.setdefault(name, []).append(value)
        if batch.labels is not None:
            labels.append(batch.labels)
    arrays = {k: np.concatenate(v) for k, v in inputs.items()}
    return arrays, (np.concatenate(labels) if labels else None)
