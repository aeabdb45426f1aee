"""`trgen render` and `trgen validate`: the Triton model repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_CHECK_FAILED, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = sub.add_parser("render", help="write the Triton model repository of a spec (builds what is missing)")
    render.add_argument("spec", help="path to the YAML spec")
    render.add_argument("--repository", type=Path, default=None, help="output folder (default: the spec's repository)")
    render.set_defaults(func=_render)
    validate = sub.add_parser(
        "validate",
        help="check a Triton model repository offline (exit 1: problems found, 2: unreadable)",
        description="Check a model repository against the rules Triton enforces when it loads it; every problem "
        "as file:line: message. Warnings (rules Triton enforces only on some hosts) do not fail.",
    )
    validate.add_argument("repository", type=Path, help="the model repository folder")
    validate.add_argument(
        "--strict",
        action="store_true",
        help="as tritonserver --disable-auto-complete-config: configs must be complete, nothing is read from "
        "model files to fill them",
    )
    validate.set_defaults(func=_validate)


def _render(args: argparse.Namespace) -> int:
    from ..pipeline import (
        build_artifacts,  # the lead's module: calibrate/quantize/build as needed
    )
    from ..render import render_repository
    from ..spec import load_spec

    spec = load_spec(args.spec)
    artifacts = build_artifacts(spec, force=False)
    repository = render_repository(spec, artifacts, args.repository)
    print(f"{repository.path}: {len(repository.models)} models ({', '.join(repository.models)})")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from ..validation import validate_repository

    problems = validate_repository(args.repository, strict=args.strict)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.is_error)
    warnings = len(problems) - errors
    mode = " (--strict)" if args.strict else ""
    if errors:
        extra = f" and {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
        print(f"{errors} problem{'s' if errors != 1 else ''}{extra} in {args.repository}{mode}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{args.repository}: no problems{mode}" + (f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""))
    return EXIT_OK
