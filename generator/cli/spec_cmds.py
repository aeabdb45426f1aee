"""`trgen schema` and `trgen check`: the spec itself."""

from __future__ import annotations

import argparse
import json

from ..spec import json_schema, load_spec


def register(sub: argparse._SubParsersAction) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of spec files (for editors)")
    schema.set_defaults(func=_schema)
    check = sub.add_parser("check", help="validate a spec file and list its variants")
    check.add_argument("spec", help="path to the YAML spec")
    check.set_defaults(func=_check)


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0


def _check(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    for rv in spec.resolved():
        print(f"{rv.name}: {rv.model.name} {rv.precision} on {rv.target}")
    return 0
