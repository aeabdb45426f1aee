"""`trgen quantize` and `trgen sensitivity`: calibrated amax -> Q/DQ INT8 ONNX, and which layers hurt."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GeneratorError


def register(sub: argparse._SubParsersAction) -> None:
    quantize = sub.add_parser("quantize", help="write the Q/DQ INT8 ONNX of each int8 variant (calibrates first)")
    quantize.add_argument("spec", help="path to the YAML spec")
    quantize.add_argument("--model", metavar="NAME", help="only this model (or variant) name")
    quantize.add_argument("--force", action="store_true", help="recalibrate even when the cache is current")
    quantize.set_defaults(func=_quantize)

    sens = sub.add_parser("sensitivity", help="rank quantized tensors by their effect on top-1 (mixed precision)")
    sens.add_argument("spec", help="path to the YAML spec")
    sens.add_argument("--model", metavar="NAME", help="only this model (or variant) name")
    sens.add_argument(
        "--mode", choices=("loo", "oat"), default="loo",
        help="loo: all INT8 but one tensor (default; what a fallback recovers); oat: only one tensor INT8",
    )
    sens.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON report here")
    sens.set_defaults(func=_sensitivity)


def _int8_variants(spec_path: str, model: str | None) -> list:
    from ..spec import load_spec

    spec = load_spec(spec_path)
    chosen = [
        rv for rv in spec.resolved()
        if rv.precision == "int8" and (model is None or model in (rv.model.name, rv.name))
    ]
    if not chosen:
        what = f"model or variant {model!r}" if model else "the spec"
        raise GeneratorError(f"{what} has no int8 variant to quantize", where=spec_path)
    return chosen


def _quantize(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import check_variant, quantize_variant

    variants = _int8_variants(args.spec, args.model)
    for rv in variants:
        check_variant(rv)  # fail on a bad keep_float before spending time on calibration
    for rv in variants:
        calibration = calibrate_variant(rv, force=args.force)
        result = quantize_variant(rv, calibration)
        kept = f", kept float: {', '.join(result.kept_float)}" if result.kept_float else ""
        print(f"{rv.name}: {result.path} ({len(result.quantized)} tensors INT8{kept})")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from ..pipeline import calibrate as calibrate_variant
    from ..quantize import check_variant, sensitivity_variant
    from ..quantize.report import ranking_table

    variants = _int8_variants(args.spec, args.model)
    for rv in variants:
        check_variant(rv)
    if args.json is not None and len(variants) > 1:
        raise GeneratorError(f"--json names one file but {len(variants)} int8 variants match: add --model")
    for rv in variants:
        calibration = calibrate_variant(rv)
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
