"""`trgen schema` and `trgen check`: the spec itself, and the whole front door of every command."""

from __future__ import annotations

import argparse

from .common import add_command, add_spec, open_spec


def register(sub: argparse._SubParsersAction) -> None:
    schema = add_command(sub, "schema", help="print the JSON Schema of spec files (for editors)",
                         examples=("trgen schema > trgen.schema.json",))
    schema.set_defaults(func=_schema)
    check = add_command(
        sub, "check", help="check a spec (everything decidable before work starts) and list its models",
        description="Everything every command checks before it writes anything: the spec's fields, the ONNX "
        "models' inputs and outputs against it, labels, data (shapes, dtypes, NaN/Inf, label range), the "
        "repository and report folders, and the Python code the spec would run. Exit 2 with every problem, "
        "one line each; 0 with each model's inputs and outputs (names, dtypes, shapes) to write the spec with.",
        examples=("trgen check examples/mnist/spec.yaml", "trgen check my_spec.yaml --trust-code"),
    )
    add_spec(check)
    check.set_defaults(func=_check)


def _schema(args: argparse.Namespace) -> int:
    import json

    from ..spec import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..signature import read_onnx_signature
    from .preflight import callables

    selection = open_spec(args, command="check")
    spec = selection.spec
    for model in spec.models:
        signature = read_onnx_signature(model.onnx)
        print(f"model {model.name}: {model.onnx.name} (max_batch_size {model.max_batch_size})")
        for kind, tensors in (("input ", signature.inputs), ("output", signature.outputs)):
            for t in tensors:
                shape = "[" + ", ".join("?" if d < 0 else str(d) for d in t.shape) + "]"
                print(f"  {kind} {t.name}: {t.dtype} {shape}")
    for rv in spec.resolved():
        print(f"variant {rv.name}: {rv.model.name} {rv.precision} on {rv.target}")
    code = callables(spec)
    if code:
        print("code this spec imports and runs (allowed by --trust-code / trust_code: true):")
        for _, reference in code:
            print(f"  {reference}")
    print(f"{args.spec}: ok")
    return 0
