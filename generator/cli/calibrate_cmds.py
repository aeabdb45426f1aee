"""`trgen calibrate`: calibrate every int8 variant of a spec and write its Q/DQ ONNX model."""

from __future__ import annotations

import argparse

from ..errors import GeneratorError
from .common import (
    add_command,
    add_force,
    add_selection,
    add_spec,
    open_spec,
    progress_enabled,
)


def register(sub: argparse._SubParsersAction) -> None:
    calibrate = add_command(
        sub, "calibrate",
        help="calibrate int8 variants: TensorRT cache, manifest, report and the Q/DQ ONNX model",
        description="For each int8 variant: run the FP32 model over the calibration data, choose per-tensor "
        "INT8 thresholds, write a TensorRT calibration cache, a manifest and a report under "
        "<workdir>/<variant>/calibration, then the Q/DQ ONNX model. Skipped when nothing changed.",
        examples=("trgen calibrate examples/mnist/spec.yaml", "trgen calibrate spec.yaml --variant mnist_int8 --force"),
    )
    add_spec(calibrate)
    add_selection(calibrate, what="int8 variants")
    add_force(calibrate)
    calibrate.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import quantize_variant

    selection = open_spec(args, command="calibrate")
    variants = [rv for rv in selection.variants if rv.precision == "int8"]
    if not variants:
        scope = f"--variant {args.variant!r}" if args.variant else f"model {args.model!r}" if args.model else "the spec"
        raise GeneratorError(f"{scope} has no int8 variant to calibrate", where=args.spec)
    progress = progress_enabled(args)
    for rv in variants:
        result = calibrate_variant(rv, force=args.force, progress=progress)
        quantized = quantize_variant(rv, result, progress=progress)
        state = "up to date (skipped; --force redoes it)" if result.skipped else "calibrated"
        print(f"{rv.name}: {state}")
        print(f"  method   {result.method}, {len(result.amax)} activation tensors")
        print(f"  cache    {result.cache_path}")
        print(f"  manifest {result.manifest_path}")
        print(f"  report   {result.report_dir / 'README.md'}")
        kept = f" ({len(quantized.kept_float)} kept float)" if quantized.kept_float else ""
        print(f"  Q/DQ     {quantized.path}{kept}")
    return 0
