"""`trgen`: thin command-line front end over the stage functions.

Each command group lives in its own module exposing `register(subparsers)`; commands return an exit
code. User errors (`GeneratorError`) print one line and exit 2; anything else is a bug (exit 3).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, GeneratorError

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
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(__name__):
                continue  # command group not present in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except GeneratorError as exc:
        print(f"trgen: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("trgen: interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("trgen: internal error (a bug in trgen; please report it with the traceback above)")
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
