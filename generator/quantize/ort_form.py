"""The INT8 artifact of the onnxruntime targets: the Q/DQ model rewritten for ORT's CPU kernels.

model_int8_qdq.onnx (the quantize stage's output) keeps TensorRT's placement and stays the portable
product artifact. Served as is by onnxruntime it runs dequantize + float kernels, slower than FP32,
so the onnxruntime targets serve rv.workdir/model_int8_ort.onnx, derived from it by
`ort_qdq.optimize_for_ort` (what changes and why: see that package) with the encoding that
build.ort_int8 names: unsigned (default) or exact; off serves the Q/DQ model as is.

Conv outputs that no Q/DQ scale reaches (a Conv feeding a residual Add) would stay float. For these
variants the calibrate stage also observes them (`ort_calibration_tensors`), and their amax, read back
from the calibration cache, give those Convs (and the Adds after them) integer kernels too. The copy
is rewritten only when the Q/DQ model, the encoding, those amax or the transform changed (a manifest
beside it records them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts import Artifact
from ..fileio import atomic_write_bytes
from ..signature import load_onnx, read_onnx_signature
from ..spec import ResolvedVariant
from ..spec.model import CPU_TARGETS
from ..manifest import describe_change, file_entry, is_up_to_date, new_manifest, write_manifest
from .ort_rewrite import TRANSFORM_REVISION, Encoding, OrtInt8Result, needs_scale, optimize_for_ort, ort_extra_tensors

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

ORT_INT8_ONNX = "model_int8_ort.onnx"
ENCODING = Encoding.UNSIGNED


def ort_int8_encoding(rv: ResolvedVariant) -> Encoding | None:
    """The encoding of the variant's onnxruntime INT8 model; None when it serves no such model.

    (not int8, not an onnxruntime target, or build.ort_int8: off)
    """
    if rv.precision != "int8" or rv.target not in CPU_TARGETS:
        return None
    mode = rv.build.ort_int8
    return None if mode == "off" else Encoding(mode)


def ort_calibration_tensors(rv: ResolvedVariant, model: "onnx.ModelProto") -> list[str]:
    """Tensors of the FP32 `model` the calibrate stage observes for the variant beyond the Q/DQ placement's.

    Empty unless the variant serves an onnxruntime INT8 model: TensorRT and the Q/DQ writer use only
    the placement's tensors.
    """
    return [] if ort_int8_encoding(rv) is None else ort_extra_tensors(model)


def write_ort_int8(
    source: Path, dest: Path, *, encoding: Encoding = ENCODING, extra_amax: Mapping[str, float] | None = None
) -> OrtInt8Result:
    """Read the Q/DQ model at `source` and write its ORT form to `dest` atomically (same bytes every time)."""
    return _write(_load(source), dest, encoding, extra_amax)


def ort_int8_artifact(
    rv: ResolvedVariant, source: Path, amax: Mapping[str, float], *, force: bool = False
) -> Artifact:
    """rv.workdir/model_int8_ort.onnx from the Q/DQ model `source`, rewritten only when something changed.

    `amax`: every calibrated amax of the variant (the extra Conv outputs `needs_scale` lists are
    looked up there). With build.ort_int8: off, the Q/DQ model itself.
    """
    encoding = ort_int8_encoding(rv)
    if encoding is None:
        log.info("%s: build.ort_int8 is off: serving the Q/DQ model as is (%s)", rv.name, source)
        return Artifact(rv.name, "onnx", source, read_onnx_signature(source))
    dest = rv.workdir / ORT_INT8_ONNX
    model = _load(source)
    extra_amax = _extra_amax(rv, needs_scale(model), amax)
    expected = new_manifest(
        rv.name, "onnx", inputs={"onnx": file_entry(source)}, ort_transform=TRANSFORM_REVISION,
        encoding=encoding.value, extra_amax=extra_amax,
    )
    if force or not is_up_to_date(dest, expected):
        why = "forced" if force else describe_change(dest, expected)
        log.info("%s: writing the onnxruntime INT8 model (%s)", rv.name, why)
        result = _write(model, dest, encoding, extra_amax)
        write_manifest(dest, expected)
        log.info("%s: %d compute op(s) fusable by onnxruntime, %d kept float -> %s",
                 rv.name, len(result.fused), len(result.kept_float), dest)
    else:
        log.info("%s: up to date (%s)", rv.name, dest)
    return Artifact(rv.name, "onnx", dest, read_onnx_signature(dest))


def _extra_amax(rv: ResolvedVariant, wanted: list[str], amax: Mapping[str, float]) -> dict[str, float]:
    """The amax of `wanted` (tensors no Q/DQ scale reaches) among the variant's calibrated ones.

    A tensor calibration did not observe leaves its Conv float (slower, not wrong): e.g. one that
    only lost its scale because keep_float removed the pair after it.
    """
    if not wanted:
        return {}
    missing = [t for t in wanted if t not in amax]
    if missing:
        log.info("%s: %d Conv(s) stay float: no calibrated amax for %s", rv.name, len(missing), ", ".join(missing))
    return {t: amax[t] for t in wanted if t in amax}


def _load(source: Path) -> "onnx.ModelProto":
    return load_onnx(source, hint="re-run `trgen quantize`")


def _write(
    model: "onnx.ModelProto", dest: Path, encoding: Encoding, extra_amax: Mapping[str, float] | None
) -> OrtInt8Result:
    result = optimize_for_ort(model, encoding=encoding, extra_amax=extra_amax)
    atomic_write_bytes(dest, result.model.SerializeToString(deterministic=True))
    return result
