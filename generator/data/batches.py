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

import importlib
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature, TensorSig, numpy_dtype, read_onnx_signature
from ..spec.data import ArraysSource, CallableSource, ImagesSource, Preprocessing
from ..spec.model import ModelSpec

Chunk = tuple[dict[str, np.ndarray], "np.ndarray | None"]
"""Some samples: input name -> array with the samples on axis 0, and their labels (or None)."""


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
        chunks: Iterable[Chunk] = _array_chunks(source, signature, batch_size)
    elif isinstance(source, ImagesSource):
        from .images import image_chunks

        chunks = image_chunks(source, signature)
    else:
        chunks = _callable_chunks(source, signature)
    seen = 0
    for batch in _rebatch(chunks, batch_size, limit):
        check_batch(batch, signature, where=where)
        seen += len(batch)
        yield batch
    if seen == 0:
        raise GeneratorError("the data set is empty (no samples): check the file, folder or callable", where=where)


def describe_source(source: ArraysSource | ImagesSource | CallableSource) -> str:
    """Where a source's data comes from, for error messages."""
    return f"data callable {source.callable}" if isinstance(source, CallableSource) else str(source.path)


def expected_shape(tensor: TensorSig) -> str:
    """'(N, 1, 28, 28)': N for a dynamic batch dimension, ? for other dynamic dimensions."""
    dims = [("N" if i == 0 else "?") if d < 0 else str(d) for i, d in enumerate(tensor.shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def check_batch(batch: Batch, signature: Signature, *, where: str) -> None:
    """Refuse a batch whose inputs do not match the model: names, rank, fixed dimensions, dtype."""
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


# ---------------------------------------------------------------- preprocessing of numeric arrays


def apply_numeric(
    x: np.ndarray, pre: Preprocessing, *, channel_axis: int, where: str, pass_unset: bool = False
) -> np.ndarray:
    """scale, mean/std (per channel on `channel_axis`) and dtype, in that order.

    With `pass_unset` (arrays sources), a preprocessing block that sets nothing passes the arrays
    through unchanged, so their dtype must already match the model (checked later).
    """
    if pass_unset and not pre.model_fields_set:
        return x
    y = x.astype(np.float32)
    if pre.scale != 1.0:
        y *= np.float32(pre.scale)
    if pre.mean is not None or pre.std is not None:
        y = (y - _per_channel(pre.mean, y, channel_axis, "mean", where)) / _per_channel(pre.std, y, channel_axis, "std", where)
    out = np.dtype(pre.dtype)
    if out.kind in "iu":
        info = np.iinfo(out)
        y = np.clip(np.rint(y), info.min, info.max)
    return y.astype(out, copy=False)


def _per_channel(values: list[float] | None, y: np.ndarray, axis: int, field: str, where: str) -> np.ndarray:
    if values is None:
        return np.float32(0.0 if field == "mean" else 1.0)  # type: ignore[return-value]
    v = np.asarray(values, dtype=np.float32)
    if len(v) == 1:
        return v.reshape(())
    if y.ndim < 2 or y.shape[axis] != len(v):
        channels = y.shape[axis] if y.ndim >= 2 else 1
        raise GeneratorError(
            f"preprocessing.{field} has {len(v)} values but the data has {channels} channels on axis {axis} "
            "(give one value per channel, or one for all; preprocessing.layout picks the channel axis)",
            where=where,
        )
    shape = [1] * y.ndim
    shape[axis] = len(v)
    return v.reshape(shape)


# ---------------------------------------------------------------- arrays (.npy / .npz)


class _NpyStream:
    """Reads a C-ordered array from an open `.npy` stream one row block at a time."""

    def __init__(self, fp: IO[bytes], where: str) -> None:
        version = np.lib.format.read_magic(fp)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(fp)
        if fortran or dtype.hasobject or not shape:
            raise ValueError("not a C-ordered numeric array with a sample axis")
        self.fp, self.shape, self.dtype = fp, tuple(shape), dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.where = where

    def read(self, rows: int) -> np.ndarray:
        data = self.fp.read(rows * self.row_bytes)
        if len(data) != rows * self.row_bytes:
            raise GeneratorError("the array ends early (truncated file?)", where=self.where)
        return np.frombuffer(data, dtype=self.dtype).reshape((rows, *self.shape[1:])).copy()


def _array_chunks(source: ArraysSource, signature: Signature, batch_size: int) -> Iterator[Chunk]:
    path = Path(source.path)
    where = str(path)
    channel_axis = 1 if source.preprocessing.layout == "NCHW" else -1
    model_inputs = [t.name for t in signature.inputs]
    mapping = dict(source.inputs or {})
    for name in mapping:
        if name not in model_inputs:
            raise GeneratorError(f"inputs: {name!r} is not a model input (inputs: {', '.join(model_inputs)})", where=where)
    with _ArrayFile(path) as arrays:
        if path.suffix == ".npy":
            if len(model_inputs) != 1:
                raise GeneratorError(f"a .npy file holds one array but the model has {len(model_inputs)} inputs: use a .npz", where=where)
            if source.labels is not None:
                raise GeneratorError("labels need a .npz file (a .npy holds one array)", where=where)
            readers = {model_inputs[0]: arrays.open(None)}
            label_reader = None
        else:
            readers = {name: arrays.open(mapping.get(name, name), for_input=name) for name in model_inputs}
            label_reader = arrays.open(source.labels, for_input=None) if source.labels is not None else None
        lengths = {name: r.shape[0] for name, r in readers.items()}
        if label_reader is not None:
            lengths["labels"] = label_reader.shape[0]
        if len(set(lengths.values())) > 1:
            raise GeneratorError(f"arrays have different sample counts: {lengths}", where=where)
        total = next(iter(lengths.values()))
        for start in range(0, total, batch_size):
            rows = min(batch_size, total - start)
            inputs = {
                name: apply_numeric(
                    _native(r.read(rows)), source.preprocessing, channel_axis=channel_axis, where=where, pass_unset=True
                )
                for name, r in readers.items()
            }
            labels = _native(label_reader.read(rows)) if label_reader is not None else None
            yield inputs, labels


def _native(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))


class _ArrayFile:
    """A `.npy` (memory-mapped) or `.npz` (members streamed from the zip) opened for row-block reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None

    def __enter__(self) -> "_ArrayFile":
        if self.path.suffix == ".npz":
            try:
                self.zip = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise GeneratorError(f"not a readable .npz file ({exc})", where=self.path) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zip is not None:
            self.zip.close()

    def open(self, key: str | None, *, for_input: str | None = None) -> "_NpyStream | _MemoryRows":
        where = str(self.path)
        if self.zip is None:
            try:
                return _MemoryRows(np.load(self.path, mmap_mode="r", allow_pickle=False), where)
            except (OSError, ValueError) as exc:
                raise GeneratorError(f"not a readable .npy file ({exc})", where=where) from None
        assert key is not None
        members = [n[:-4] for n in self.zip.namelist() if n.endswith(".npy")]
        if key not in members:
            role = f"for input {for_input!r}" if for_input is not None else "for the labels"
            fix = f"; map it with inputs: {{{for_input}: KEY}}" if for_input is not None else ""
            raise GeneratorError(f"no array {key!r} {role} (the file has: {', '.join(members)}){fix}", where=where)
        try:
            return _NpyStream(self.zip.open(key + ".npy"), f"{where}[{key}]")
        except ValueError:  # Fortran order or object arrays: load this member whole
            with np.load(self.path, allow_pickle=False) as npz:
                return _MemoryRows(npz[key], f"{where}[{key}]")


class _MemoryRows:
    """Row-block reads over an array already in memory or memory-mapped."""

    def __init__(self, array: np.ndarray, where: str) -> None:
        if array.ndim == 0:
            raise GeneratorError("the array is a scalar: it needs a sample axis first", where=where)
        self.array, self.shape, self.pos = array, array.shape, 0

    def read(self, rows: int) -> np.ndarray:
        block = np.array(self.array[self.pos : self.pos + rows])
        self.pos += rows
        return block


# ---------------------------------------------------------------- user callables


def _callable_chunks(source: CallableSource, signature: Signature) -> Iterator[Chunk]:
    where = f"data callable {source.callable}"
    function = resolve_callable(source.callable)
    names = {t.name for t in signature.inputs}
    try:
        iterator = iter(function(**source.args))
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            yield _callable_item(item, names, where)
    except GeneratorError:
        raise
    except Exception as exc:  # user code: any failure becomes one line naming the callable
        raise GeneratorError(f"raised {exc.__class__.__name__}: {exc}", where=where) from None


def _callable_item(item: Any, names: set[str], where: str) -> Chunk:
    if not isinstance(item, Mapping):
        raise GeneratorError(f"yielded a {type(item).__name__}: it must yield dicts of input name -> batch array", where=where)
    inputs: dict[str, np.ndarray] = {}
    labels = None
    for key, value in item.items():
        if key == "labels" and key not in names:
            labels = np.asarray(value)
        else:
            inputs[str(key)] = np.asarray(value)
    if not inputs:
        raise GeneratorError("yielded a dict with no input arrays", where=where)
    return inputs, labels


def resolve_callable(reference: str) -> Any:
    """Import `package.module:function` (runs the module's code) and return the function."""
    module_name, _, attr = reference.partition(":")
    where = f"data callable {reference}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        hint = " (is it installed or on PYTHONPATH?)" if isinstance(exc, ModuleNotFoundError) else ""
        raise GeneratorError(f"cannot import {module_name!r}: {exc.__class__.__name__}: {exc}{hint}", where=where) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise GeneratorError(f"module {module_name!r} has no function {attr!r}", where=where)
    return function
