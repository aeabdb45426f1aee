"""`trgen calibrate`: calibrate every int8 variant of a spec and write its Q/DQ ONNX model."""

from __future__ import annotations

import argparse

from ..errors import GeneratorError


def register(sub: argparse._SubParsersAction) -> None:
    calibrate = sub.add_parser(
        "calibrate",
        help="calibrate int8 variants: TensorRT cache, manifest, report and the Q/DQ ONNX model",
        description="For each int8 variant: run the FP32 model over the calibration data, choose per-tensor "
        "INT8 thresholds, write a TensorRT calibration cache, a manifest and a report under "
        "<workdir>/<variant>/calibration, then the Q/DQ ONNX model. Skipped when nothing changed.",
    )
    calibrate.add_argument("spec", help="path to the YAML spec")
    calibrate.add_argument("--model", metavar="NAME", help="only this model's int8 variants")
    calibrate.add_argument("--force", action="store_true", help="recalibrate even when nothing changed")
    calibrate.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import quantize_variant
    from ..spec import load_spec

    spec = load_spec(args.spec)
    if args.model is not None and args.model not in {m.name for m in spec.models}:
        known = ", ".join(m.name for m in spec.models)
        raise GeneratorError(f"--model {args.model!r}: the spec has no such model (models: {known})", where=args.spec)
    variants = [
        rv for rv in spec.resolved() if rv.precision == "int8" and (args.model is None or rv.model.name == args.model)
    ]
    if not variants:
        scope = f"model {args.model!r}" if args.model else "the spec"
        raise GeneratorError(f"{scope} has no int8 variant to calibrate", where=args.spec)
    for rv in variants:
        result = calibrate_variant(rv, force=args.force, progress=True)
        quantized = quantize_variant(rv, result, progress=True)
        state = "up to date (skipped; --force redoes it)" if result.skipped else "calibrated"
        print(f"{rv.name}: {state}")
        print(f"  method   {result.method}, {len(result.amax)} activation tensors")
        print(f"  cache    {result.cache_path}")
        print(f"  manifest {result.manifest_path}")
        print(f"  report   {result.report_dir / 'README.md'}")
        kept = f" ({len(quantized.kept_float)} kept float)" if quantized.kept_float else ""
        print(f"  Q/DQ     {quantized.path}{kept}")
    return 0
