"""`trgen run SPEC`: the main job, every stage in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EXIT_CHECK_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="calibrate, build, render, validate, serve, compare INT8 with FP32, load-test and report",
        description="The whole path on one spec. Exit code 1 when INT8 misses the spec's tolerances.",
    )
    run.add_argument("spec", help="path to the YAML spec")
    run.add_argument("--url", help="an external Triton server serving the rendered repository (default: bundled)")
    run.add_argument("--force", action="store_true", help="redo calibration and builds even if nothing changed")
    run.add_argument("--no-bench", dest="bench", action="store_false", help="skip the load test")
    run.add_argument("--report", type=Path, help="report folder (default: <workdir>/report)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..pipeline import run
    from ..spec import load_spec

    from ..measure.report import precision_ratios

    result = run(load_spec(args.spec), url=args.url, force=args.force, bench=args.bench, report_dir=args.report)
    for ratio in precision_ratios(result.bench):
        print(
            f"{ratio.candidate} vs {ratio.baseline}, {ratio.mode} {ratio.level:g}: "
            f"throughput x{ratio.throughput_ratio:.2f}, p99 latency x{ratio.p99_ratio:.2f}"
        )
    print(f"repository: {result.repository.path}")
    print(f"report:     {result.report.markdown}")
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED
