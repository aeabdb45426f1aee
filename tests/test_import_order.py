"""Imports flow one way through the stages: spec -> data -> calibrate -> quantize -> engine -> render
-> serve -> measure -> pipeline -> cli.

Every `import` in generator/ (module level or inside a function, TYPE_CHECKING blocks included) is
read with `ast`; a stage may import itself, the shared modules and earlier stages, never a later
one. Shared modules (errors, fileio, signature, ...) import no stage at all. A new top-level module
or package must be placed in `ORDER` or `SHARED` first, so the rule cannot be sidestepped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "generator"

# the rooms, in the order data flows through them (validation reads what render writes, and render
# validates before it swaps a repository in, so validation sits just before render)
ORDER = ("spec", "data", "calibrate", "quantize", "engine", "validation", "render", "templates", "serve", "measure",
         "pipeline", "cli", "__main__")
SHARED = ("__init__", "errors", "fileio", "signature", "artifacts", "manifest")


def _room(module: str) -> str:
    """'generator.calibrate.run' -> 'calibrate'; 'generator' or a name defined in its __init__ -> '__init__'."""
    parts = module.split(".")
    room = parts[1] if len(parts) > 1 else "__init__"
    return room if room in ORDER or room in SHARED else "__init__"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every generator import in the file."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "generator"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "generator":
                continue
            if target == "generator":  # `from .. import pipeline` names rooms (or __init__ attributes)
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """One line per import in `path` that goes against the stage order."""
    here = _room(_module_name(path, root))
    wrong = []
    for line, target in _imports(path, root):
        there = _room(target)
        if here in SHARED:
            if there not in SHARED:
                wrong.append(f"{path.relative_to(root)}:{line}: the shared module {here} imports the stage {target}")
        elif there not in SHARED and ORDER.index(there) > ORDER.index(here):
            wrong.append(f"{path.relative_to(root)}:{line}: {here} imports the later stage {target}")
    return wrong


FILES = sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_room_is_placed() -> None:
    rooms = {_module_name(p, ROOT).split(".")[1] for p in FILES if "." in _module_name(p, ROOT)}
    unknown = rooms - set(ORDER) - set(SHARED)
    assert not unknown, f"place these in ORDER or SHARED of {__file__}: {sorted(unknown)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_stage_order(path: Path) -> None:
    wrong = violations(path)
    assert not wrong, "\n".join(wrong)


def test_the_checker_finds_backward_imports(tmp_path: Path) -> None:
    """The rule itself, on a made-up package: backward and shared-to-stage imports are found, forward ones are not."""
    root = tmp_path / "generator"
    (root / "calibrate").mkdir(parents=True)
    run = root / "calibrate" / "run.py"
    run.write_text("from ..spec import x\nfrom ..render import writer\nimport generator.pipeline\n"
                   "def f():\n    from ..quantize.placement import plan\n")
    assert [v.split(": ", 1)[1] for v in violations(run, root)] == [
        "calibrate imports the later stage generator.render",
        "calibrate imports the later stage generator.pipeline",
        "calibrate imports the later stage generator.quantize.placement",
    ]
    shared = root / "errors.py"
    shared.write_text("from .spec import y\nfrom .fileio import z\nfrom . import __version__\n")
    assert len(violations(shared, root)) == 1
