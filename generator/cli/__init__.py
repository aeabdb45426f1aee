"""`trgen`: thin command-line front end over the stage functions.

Each command group lives in its own module exposing `register(subparsers)` (cheap: stages are
imported when a command runs); commands return an exit code. Exit codes mean one thing each:
0 ok, 1 a check ran and failed, 2 bad input (one line per problem, nothing written), 3 a bug in
trgen, 4 a run-time failure that is not the input's fault (server died, build failed, Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import (
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    EXIT_RUNTIME_ERROR,
    EXIT_USER_ERROR,
    GeneratorError,
    RuntimeFailure,
    problem_lines,
)
from .common import add_verbose

# command modules, in the order their commands appear in --help (pipeline order)
_COMMAND_MODULES = (
    "spec_cmds", "calibrate_cmds", "quantize_cmds", "build_cmds", "render_cmds", "serve_cmds", "bench_cmds", "run_cmd",
)

log = logging.getLogger("trgen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trgen",
        description="FP32 ONNX -> calibrated INT8 -> TensorRT / Triton model repository, served and measured.",
    )
    parser.add_argument("--version", action="version", version=f"trgen {__version__}")
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
            module.register(sub)
        except Exception as exc:  # noqa: BLE001 - reported, never silently dropped: the other commands still work
            print(f"trgen: warning: the {module_name} commands are unavailable: {exc.__class__.__name__}: {exc} "
                  "(a bug or a broken install; please report it)", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except RuntimeFailure as exc:
        print(f"trgen: failed: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    except GeneratorError as exc:
        for line in problem_lines(exc):
            print(f"trgen: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `trgen schema | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("trgen: interrupted (Ctrl-C); finished outputs are kept, nothing is half-written", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    except Exception:
        log.exception("trgen: internal error (a bug in trgen; please report it with the traceback above)")
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
