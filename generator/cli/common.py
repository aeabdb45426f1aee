"""Argument groups every command shares, and the front door each spec command walks through first.

One meaning per flag, everywhere: `--model NAME` is a model name of the spec, `--variant NAME` a
variant (repository) name; `--url` an external Triton; `--no-progress`; `-v`. Imports here stay
light (argparse only): the heavy stages load when a command runs, so `trgen --version` and
`trgen validate` start fast.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec import ResolvedVariant, Spec


def add_command(
    sub: argparse._SubParsersAction, name: str, *, help: str, description: str | None = None,
    examples: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with examples, accepting -v and --no-progress after its name too."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    parser = sub.add_parser(
        name, help=help, description=description or help, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_verbose(parser, default=argparse.SUPPRESS)
    add_progress(parser)
    return parser


def add_verbose(parser: argparse.ArgumentParser, *, default: object = False) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")


def add_spec(parser: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """The spec path and the consent to run code it names (`callable` data sources)."""
    if optional:
        parser.add_argument("spec", nargs="?", help="path to the YAML spec")
    else:
        parser.add_argument("spec", help="path to the YAML spec")
    parser.add_argument(
        "--trust-code", action="store_true",
        help="allow the spec's `callable` data sources to import and run their Python code "
        "(or set trust_code: true in the spec)",
    )


def add_selection(parser: argparse.ArgumentParser, *, what: str = "variants") -> None:
    group = parser.add_argument_group("selection")
    group.add_argument("--model", metavar="NAME", help=f"only the {what} of this model (a model name of the spec)")
    group.add_argument("--variant", metavar="NAME", help="only this variant (its repository name, e.g. mnist_int8)")


def add_url(parser: argparse.ArgumentParser, default: str = "the bundled server") -> None:
    parser.add_argument(
        "--url", help=f"an external Triton: host:port (gRPC) or http://host:port (HTTP); default: {default}"
    )


def add_report_folder(parser: argparse.ArgumentParser, flag: str, default: str) -> None:
    """The folder a command writes its report into: replaced whole, so only a folder trgen wrote."""
    group = parser.add_argument_group("output")
    group.add_argument(flag, type=Path, metavar="DIR", help=f"report folder (default: {default}); replaced whole, "
                       "so only a folder trgen wrote (marked .trgen-report) is accepted")


def add_json_file(parser: argparse.ArgumentParser, *, dest: str = "json") -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--json", type=Path, dest=dest, metavar="PATH", help="also write the result as JSON here")


def add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo calibration and builds even if nothing changed")


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (off anyway when not a terminal)")


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars redraw with \\r: only on a terminal, and not with --no-progress."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


@dataclass(frozen=True)
class Selection:
    """A spec after the front door, and the variants a command works on."""

    spec: Spec
    variants: tuple[ResolvedVariant, ...]

    @property
    def model(self) -> str | None:
        """The one model name chosen with --model (None: every model)."""
        names = {rv.model.name for rv in self.variants}
        return names.pop() if len(names) == 1 and len(self.spec.models) > 1 else None


def open_spec(
    args: argparse.Namespace, *, command: str, report_dir: Path | None = None, repository: Path | None = None,
) -> Selection:
    """Load, check and select: every check decidable before work starts runs here, before anything is written.

    Problems are raised together (one line each); then leftovers of killed runs are swept.
    """
    from .preflight import front_door

    return front_door(
        Path(args.spec), command=command, trust_code=getattr(args, "trust_code", False),
        model=getattr(args, "model", None), variant=getattr(args, "variant", None),
        report_dir=report_dir, repository=repository,
    )
