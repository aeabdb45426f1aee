"""`trgen quantize` and `trgen sensitivity`: calibrated amax -> Q/DQ INT8 ONNX, and which layers hurt."""

from __future__ import annotations

import argparse

from ..errors import GeneratorError
from .common import (
    Selection,
    add_command,
    add_force,
    add_json_file,
    add_selection,
    add_spec,
    open_spec,
    progress_enabled,
)


def register(sub: argparse._SubParsersAction) -> None:
    quantize = add_command(sub, "quantize", help="write the Q/DQ INT8 ONNX of each int8 variant (calibrates first)",
                           examples=("trgen quantize examples/mnist/spec.yaml",
                                     "trgen quantize spec.yaml --variant mnist_int8 --force"))
    add_spec(quantize)
    add_selection(quantize, what="int8 variants")
    add_force(quantize)
    quantize.set_defaults(func=_quantize)

    sens = add_command(sub, "sensitivity", help="rank quantized tensors by their effect on top-1 (mixed precision)",
                       examples=("trgen sensitivity examples/mnist/spec.yaml",
                                 "trgen sensitivity spec.yaml --variant mnist_int8 --mode oat --json sens.json"))
    add_spec(sens)
    add_selection(sens, what="int8 variants")
    sens.add_argument(
        "--mode", choices=("loo", "oat"), default="loo",
        help="loo: all INT8 but one tensor (default; what a fallback recovers); oat: only one tensor INT8",
    )
    add_json_file(sens)
    sens.set_defaults(func=_sensitivity)


def _int8_variants(args: argparse.Namespace, command: str) -> list:
    selection: Selection = open_spec(args, command=command)
    chosen = [rv for rv in selection.variants if rv.precision == "int8"]
    if not chosen:
        what = f"--variant {args.variant!r}" if args.variant else f"model {args.model!r}" if args.model else "the spec"
        raise GeneratorError(f"{what} has no int8 variant to quantize", where=args.spec)
    return chosen


def _quantize(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import check_variant, quantize_variant

    variants = _int8_variants(args, "quantize")
    for rv in variants:
        check_variant(rv)  # fail on a bad keep_float before spending time on calibration
    progress = progress_enabled(args)
    for rv in variants:
        calibration = calibrate_variant(rv, force=args.force, progress=progress)
        result = quantize_variant(rv, calibration, progress=progress)
        kept = f", kept float: {', '.join(result.kept_float)}" if result.kept_float else ""
        print(f"{rv.name}: {result.path} ({len(result.quantized)} tensors INT8{kept})")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import check_variant, sensitivity_variant
    from ..quantize.report import ranking_table

    variants = _int8_variants(args, "sensitivity")
    for rv in variants:
        check_variant(rv)
    if args.json is not None and len(variants) > 1:
        raise GeneratorError(f"--json names one file but {len(variants)} int8 variants match: add --variant")
    for rv in variants:
        calibration = calibrate_variant(rv, progress=progress_enabled(args))
        result = sensitivity_variant(rv, calibration, mode=args.mode, json_path=args.json)
        print(f"== {rv.name}")
        print(ranking_table(result.ranking))
        if result.fallback is not None:
            fb = result.fallback
            print(f"fallback to reach a drop <= {fb.target_drop:.2f}:")
            for step in fb.steps:
                print(f"  {step.kept or '(all INT8)'}: {result.ranking.metric} {step.score.metric:.2f} (drop {step.drop:+.2f})")
            print(f"  {'met' if fb.met else 'NOT met'} with {len(fb.keep_float)} tensor(s) in float")
        print(f"report: {result.json_path}, plot: {result.plot_path}")
    return 0
