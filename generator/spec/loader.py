"""Load a spec file: safe YAML with positions -> typed `Spec`, every error as file:line + field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import SpecError
from .model import Spec

Loc = tuple[str | int, ...]


class _PositionIndex:
    """Maps a path in the YAML document (keys and list indices) to its 1-based line."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[Loc, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self._lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = loc + (str(key.value),)
                self._walk(value, child)
                self._lines[child] = key.start_mark.line + 1  # point at the key, not its value
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, loc + (index,))

    def line(self, loc: Loc) -> tuple[int | None, str]:
        """Line of the deepest part of `loc` in the document, and the field path as written in YAML.

        Parts of a pydantic location that are not in the document (union tags) are skipped.
        """
        found: Loc = ()
        for part in loc:
            if found + (part,) in self._lines:
                found = found + (part,)
        written = found if not loc or found[-1:] == loc[-1:] else found + (loc[-1],)
        return self._lines.get(found), (_dotted(written) if written else "(top level)")


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]


def _parse(path: Path) -> tuple[Any, _PositionIndex]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc.__class__.__name__}: {exc}", file=path) from None
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)  # positions
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # values (safe: SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"invalid YAML: {problem}", file=path, line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise SpecError("the spec must be a YAML mapping with at least a 'models' list", file=path, line=1)
    return data, _PositionIndex(root)


def _message(error: ErrorDetails) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        msg = "unknown key (remove it or check its spelling against `trgen schema`)"
    elif error["type"] == "missing":
        msg = "required field is missing"
    elif error["type"] == "literal_error":
        msg = f"{msg} (got {error.get('input')!r})"
    return msg


def load_spec(path: str | Path, *, check_files: bool = True) -> Spec:
    """Read and validate a spec. Raises `SpecError` (one line, file:line, field) on any problem."""
    path = Path(path)
    data, positions = _parse(path)
    try:
        spec = Spec.model_validate(data, context={"base_dir": path.parent.resolve(), "check_files": check_files})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        line, field = positions.line(tuple(first["loc"]))
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise SpecError(_message(first) + more, file=path, line=line, field=field) from None

    from .checks import check_spec  # cross-field rules that need the whole document

    check_spec(spec, path, positions.line)
    return spec
