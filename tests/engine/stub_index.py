"""Read the tensorrt-stubs files (10.13) into {class: {member: [parameter-name lists] or None}}.

The stub file does not parse as Python as shipped (parameters named `in`, one non-default parameter
after defaults), so two mechanical fixes are applied first; if the stubs change shape, the tests that
use this skip with a reason instead of passing vacuously.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

STUBS = Path(__file__).resolve().parents[2] / ".stubs"
BINDINGS = STUBS / "tensorrt_bindings" / "tensorrt.pyi"
PACKAGE = STUBS / "tensorrt" / "__init__.pyi"

Overload = tuple[list[str], int]  # parameter names (without self), how many of them are required
Members = dict[str, list[Overload] | None]  # method -> one entry per overload; attribute -> None


def _sanitize(text: str) -> str:
    text = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)
    return text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = ...)")


@lru_cache(maxsize=1)
def stub_classes() -> dict[str, Members]:
    tree = ast.parse(_sanitize(BINDINGS.read_text(encoding="utf-8")))
    classes: dict[str, Members] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        members: Members = {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                params = [a.arg for a in item.args.args[1:]]  # drop self
                required = len(item.args.args) - len(item.args.defaults) - 1
                existing = members.get(item.name)
                members[item.name] = (existing or []) + [(params, max(required, 0))]
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                members.setdefault(item.target.id, None)
            elif isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name):
                        members.setdefault(target.id, None)
        classes[node.name] = members
    return classes


@lru_cache(maxsize=1)
def package_names() -> set[str]:
    """Names `import tensorrt` exposes (its __all__ plus __version__)."""
    tree = ast.parse(PACKAGE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value)) | {"__version__"}
    raise AssertionError("tensorrt/__init__.pyi has no __all__")
