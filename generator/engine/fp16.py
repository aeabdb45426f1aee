"""FP16 copy of an FP32 ONNX model (onnxconverter-common), for CPU fp16 variants and TensorRT 11.

TensorRT 11 takes precision from the graph only (no BuilderFlag.FP16), so an FP16 engine is built
from an FP16 model; the same file is what python-onnxruntime / onnxruntime fp16 variants serve.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from ..signature import load_onnx

log = logging.getLogger(__name__)


def convert_to_fp16(source: Path, dest: Path, *, keep_io_types: bool) -> Path:
    """Write an FP16 copy of `source` to `dest` atomically; I/O stay float32 when `keep_io_types`."""
    from onnxconverter_common import float16

    model = load_onnx(source)
    try:
        converted = float16.convert_float_to_float16(model, keep_io_types=keep_io_types)
    except Exception as exc:  # the converter raises plain exceptions on unsupported graphs
        raise GeneratorError(
            f"FP16 conversion failed ({exc.__class__.__name__}: {exc}): use precision fp32 for this model",
            where=source,
        ) from None
    atomic_write_bytes(dest, converted.SerializeToString())
    log.info("wrote FP16 model %s (I/O %s)", dest, "float32" if keep_io_types else "float16")
    return dest
