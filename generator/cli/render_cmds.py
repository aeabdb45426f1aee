"""`trgen render` and `trgen validate`: the Triton model repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_CHECK_FAILED, EXIT_OK
from .common import add_command, add_spec, open_spec, progress_enabled


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = add_command(
        sub, "render", help="write the Triton model repository of a spec (builds what is missing)",
        description="Calibrate, quantize and build what is missing, then write the whole repository into a "
        "folder beside the target and swap it in atomically (validated first). Only a folder trgen wrote is "
        "replaced.",
        examples=("trgen render examples/mnist/spec.yaml", "trgen render spec.yaml --repository /srv/models"),
    )
    add_spec(render)
    render.add_argument("--repository", type=Path, default=None, help="output folder (default: the spec's repository)")
    render.set_defaults(func=_render)
    validate = add_command(
        sub,
        "validate",
        help="check a Triton model repository offline (exit 1: problems found, 2: unreadable)",
        description="Check a model repository against the rules Triton enforces when it loads it; every problem "
        "as file:line: message. Warnings (rules Triton enforces only on some hosts) do not fail.",
        examples=("trgen validate model_repository", "trgen validate /srv/models --strict"),
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
    from ..pipeline import prepare_repository

    spec = open_spec(args, command="render", repository=args.repository).spec
    repository = prepare_repository(spec, repository=args.repository, progress=progress_enabled(args))
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
