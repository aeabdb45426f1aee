"""`trgen run SPEC`: the main job, every stage in one command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_CHECK_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ..measure.report import PrecisionRatio

from .common import (
    add_command,
    add_force,
    add_report_folder,
    add_selection,
    add_spec,
    add_url,
    open_spec,
    progress_enabled,
)


def register(sub: argparse._SubParsersAction) -> None:
    run = add_command(
        sub, "run",
        help="calibrate, build, render, validate, serve, compare INT8 with FP32, load-test and report",
        description="The whole path on one spec. Exit 1 when INT8 misses the spec's tolerances, 4 when the run "
        "is cut short (server died, Ctrl-C): the report is still written with what finished. The repository "
        "always holds every variant; --model / --variant choose what is compared and load-tested.",
        examples=("trgen run examples/mnist/spec.yaml", "trgen run spec.yaml --no-bench --report ci_report",
                  "trgen run spec.yaml --url localhost:8001 --variant mnist_int8"),
    )
    add_spec(run)
    add_url(run)
    add_selection(run, what="variants compared and load-tested")
    add_force(run)
    run.add_argument("--no-bench", dest="bench", action="store_false", help="skip the load test")
    add_report_folder(run, "--report", "WORKDIR/report")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..measure.report import precision_ratios
    from ..pipeline import run

    selection = open_spec(args, command="run", report_dir=args.report or _default_report(args))
    only = [rv.name for rv in selection.variants] if (args.model or args.variant) else None
    result = run(selection.spec, url=args.url, force=args.force, bench=args.bench, report_dir=args.report,
                 progress=progress_enabled(args), only=only)
    for line in ratio_lines(precision_ratios(result.bench)):
        print(line)
    print(f"repository: {result.repository.path}")
    print(f"report:     {result.report.markdown}")
    return EXIT_OK if result.passed else EXIT_CHECK_FAILED


def _default_report(args: argparse.Namespace) -> Path:
    from ..spec import load_spec

    return load_spec(args.spec, check_files=False).workdir / "report"


def ratio_lines(ratios: Sequence[PrecisionRatio]) -> list[str]:
    """One console line per INT8/FP32 pair and load level; says so when a level never settled."""
    lines = []
    for ratio in ratios:
        unstable = (f" (unstable: {', '.join(ratio.unstable)} did not settle within the stability limit; "
                    "treat this ratio with care)") if ratio.unstable else ""
        lines.append(f"{ratio.candidate} vs {ratio.baseline}, {ratio.mode} {ratio.level:g}: "
                     f"throughput x{ratio.throughput_ratio:.2f}, p99 latency x{ratio.p99_ratio:.2f}{unstable}")
    return lines
