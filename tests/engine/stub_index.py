"""The TensorRT Python API as the tensorrt-stubs package describes it, committed as a small JSON index.

`tensorrt_stubs_<version>.json` beside this file holds, for the newest tensorrt-stubs on PyPI, every
class with its members (methods: parameter names and how many are required, per overload;
attributes: null) and the names `import tensorrt` exposes. The surface tests read the newest index,
so they run in the default test run with nothing downloaded and nothing installed: the stubs must
never be installed into the venv (they make an importable, empty `tensorrt` that fools TensorRT
detection). Regenerate with `python -m tests.engine.stub_index [STUBS_DIR]` after
`pip install --no-deps --target .stubs "tensorrt-stubs==<newest>"` (what .ci/run does), and
`test_the_committed_index_matches_the_stubs` checks the index against the stubs wherever they are.

The stub file does not parse as Python as shipped (parameters named `in`, one non-default parameter
after defaults), so two mechanical fixes are applied first.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STUBS = HERE.parents[1] / ".stubs"
Overload = tuple[list[str], int]  # parameter names (without self), how many of them are required
Members = dict[str, list[Overload] | None]  # method -> one entry per overload; attribute -> None


def _sanitize(text: str) -> str:
    text = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)
    return text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = ...)")


def parse_classes(bindings: Path) -> dict[str, Members]:
    """{class: {member: overloads or None}} from tensorrt_bindings/tensorrt.pyi."""
    tree = ast.parse(_sanitize(bindings.read_text(encoding="utf-8")))
    classes: dict[str, Members] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        members: Members = {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                params = [a.arg for a in item.args.args[1:]]  # drop self
                required = len(item.args.args) - len(item.args.defaults) - 1
                members[item.name] = (members.get(item.name) or []) + [(params, max(required, 0))]
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                members.setdefault(item.target.id, None)
            elif isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name):
                        members.setdefault(target.id, None)
        classes[node.name] = members
    return classes


def parse_package(package: Path) -> list[str]:
    """Names `import tensorrt` exposes (its __all__ plus __version__)."""
    tree = ast.parse(package.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return sorted(set(ast.literal_eval(node.value)) | {"__version__"})
    raise ValueError(f"{package} has no __all__")


def stubs_version(stubs: Path) -> str | None:
    """'10.13.0.35.1' from the installed dist-info folder, or None when no stubs are installed there."""
    found = sorted(stubs.glob("tensorrt_stubs-*.dist-info"))
    return found[-1].name[len("tensorrt_stubs-"):-len(".dist-info")] if found else None


def build_index(stubs: Path) -> dict[str, Any]:
    return {
        "version": stubs_version(stubs),
        "package": parse_package(stubs / "tensorrt" / "__init__.pyi"),
        "classes": parse_classes(stubs / "tensorrt_bindings" / "tensorrt.pyi"),
    }


def dump_index(index: dict[str, Any]) -> str:
    """One class per line: small, and a new stubs release shows up as a readable diff."""
    classes = ",\n".join(f"  {json.dumps(name)}: {json.dumps(members, sort_keys=True)}" for name, members in sorted(index["classes"].items()))
    return (
        f'{{"version": {json.dumps(index["version"])},\n"package": {json.dumps(index["package"])},\n'
        f'"classes": {{\n{classes}\n}}}}\n'
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.stem))


def index_files() -> list[Path]:
    return sorted(HERE.glob("tensorrt_stubs_*.json"), key=_version_key)


@lru_cache(maxsize=1)
def newest_index() -> dict[str, Any]:
    files = index_files()
    if not files:
        raise FileNotFoundError(f"no tensorrt_stubs_*.json in {HERE}: run `python -m tests.engine.stub_index`")
    data: dict[str, Any] = json.loads(files[-1].read_text(encoding="utf-8"))
    return data


def stub_classes() -> dict[str, Members]:
    classes: dict[str, Members] = {
        name: {m: None if o is None else [(list(p), r) for p, r in o] for m, o in members.items()}
        for name, members in newest_index()["classes"].items()
    }
    return classes


def package_names() -> set[str]:
    return set(newest_index()["package"])


def main(argv: list[str]) -> int:
    stubs = Path(argv[0]) if argv else STUBS
    index = build_index(stubs)
    if index["version"] is None:
        print(f"no tensorrt-stubs installed in {stubs}", file=sys.stderr)
        return 2
    target = HERE / f"tensorrt_stubs_{index['version']}.json"
    target.write_text(dump_index(index), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
