"""The graph INT8 is built from: the user's FP32 model prepared as NVIDIA's and onnxruntime's quantizers do.

An exported model often keeps training-time structure that costs INT8 dearly: BatchNormalization
between a Conv and its activation (a float op that splits every integer island), constant
subgraphs, and activations written out op by op (hard-swish as Add/Clip/Mul/Div) that leave three
float ops and a Q/DQ round trip where one op would do. So before calibration the model is
prepared once, into `<variant workdir>/model_prepared.onnx`:

1. onnxruntime's own quantization pre-processing (`quant_pre_process`): ONNX shape inference and
   onnxruntime's basic graph optimizations, i.e. BatchNormalization folded into the Conv/Gemm before
   it, constants folded, redundant nodes removed. Only standard ONNX ops come out, so TensorRT
   reads the result too. (Symbolic shape inference is skipped: it needs sympy, and ONNX's own
   inference gives calibration the types it needs.)
2. `activations.fuse_activations`: written-out hard-swish / hard-sigmoid / GELU become the single
   ONNX op where the model's opset has one.

Calibration observes this graph and both INT8 forms and the TensorRT cache are built from it, so
every tensor name they carry exists in the model they are applied to. The FP32 variant keeps
serving the user's model as given. A manifest beside the file skips the work while the source
model and this module's revision are unchanged.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from ..manifest import describe_change, file_entry, is_up_to_date, new_manifest, write_manifest

if TYPE_CHECKING:  # onnx is imported lazily
    import onnx

log = logging.getLogger(__name__)

PREPARED_ONNX = "model_prepared.onnx"
PREPARE_REVISION = 1  # bump when preparation writes something else, so prepared copies are redone


def prepare_model(source: Path, dest: Path, *, variant: str, force: bool = False) -> Path:
    """Write the prepared copy of `source` to `dest` unless an up-to-date one is there; returns `dest`."""
    import onnxruntime

    expected = new_manifest(
        variant, "onnx", inputs={"onnx": file_entry(source)}, prepare_revision=PREPARE_REVISION,
        onnxruntime=onnxruntime.__version__,
    )
    if not force and is_up_to_date(dest, expected):
        log.debug("%s: prepared model up to date (%s)", variant, dest)
        return dest
    log.info("%s: preparing the graph for INT8 (%s)", variant, "forced" if force else describe_change(dest, expected))
    model = prepared(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = model.SerializeToString(deterministic=True)
    except ValueError as exc:  # protobuf's 2 GiB limit
        raise GeneratorError(f"cannot serialize the prepared model: {exc}", where=source) from None
    atomic_write_bytes(dest, data)
    write_manifest(dest, expected)
    return dest


def prepared(source: Path) -> "onnx.ModelProto":
    """The prepared model, in memory: onnxruntime's pre-processing, then activation fusion."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .activations import fuse_activations

    with tempfile.TemporaryDirectory(prefix="trgen-prepare-") as tmp:
        out = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(out), skip_symbolic_shape=True)
        except Exception as exc:  # onnxruntime / onnx raise many types; one line is enough
            text = str(exc).strip().splitlines()
            raise GeneratorError(
                f"onnxruntime's quantization pre-processing failed: {exc.__class__.__name__}: {text[0] if text else ''}",
                where=source,
            ) from None
        model = onnx.load(str(out))
    fused = fuse_activations(model)
    if fused:
        log.info("recognised %s", ", ".join(f"{n} {op}" for op, n in sorted(fused.items())))
    return model
