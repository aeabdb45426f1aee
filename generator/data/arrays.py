"""`.npy` / `.npz` data sources, read row block by row block (memory-mapped or streamed from the zip),
so memory does not grow with the file size; and the numeric preprocessing shared with images."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature
from ..spec.data import ArraysSource, Preprocessing

Chunk = tuple[dict[str, np.ndarray], "np.ndarray | None"]
"""Some samples: input name -> array with the samples on axis 0, and their labels (or None)."""



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


def array_chunks(source: ArraysSource, signature: Signature, batch_size: int) -> Iterator[Chunk]:
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
