"""Load a spec file: safe YAML with positions -> typed `Spec`, every error as file:line + field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import GeneratorError, ProblemList, SpecError
from .checks import LineOf
from .model import Spec

Loc = tuple[str | int, ...]


class _PositionIndex:
    """Maps a path in the YAML document (keys and list indices) to its 1-based line."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[Loc, int] = {}
        self._sources: dict[Loc, str] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self._lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode) and not node.style:
            self._sources[loc] = str(node.value)  # as written, for hints (a bare `no` read as false)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = loc + (str(key.value),)
                self._walk(value, child)
                self._lines[child] = key.start_mark.line + 1  # point at the key, not its value
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, loc + (index,))

    def source(self, loc: Loc) -> str | None:
        """The text of an unquoted scalar at `loc`, as the user wrote it."""
        return self._sources.get(loc)

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
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *defaults`: merged keys may be overridden by the mapping's own keys
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)  # type: ignore[no-untyped-call]
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]

MAX_SPEC_BYTES = 1 << 20
"""A spec file larger than 1 MiB is refused unread (real specs are a few kB)."""
MAX_DEPTH = 32
"""Nesting deeper than 32 mappings/lists is refused (real specs nest 6 deep)."""
MAX_NODES = 100_000
"""At most 100,000 values after aliases are expanded: an alias bomb is refused before it is built."""


def _bounded_events(text: str, path: Path) -> None:
    """Walk the parser's events (no recursion, no objects built) and refuse documents nested too deep."""
    loader = _UniqueKeyLoader(text)
    depth = 0
    try:
        while loader.check_event():  # type: ignore[no-untyped-call]
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError(f"nested more than {MAX_DEPTH} levels deep: a spec is a few levels of "
                                    "mappings and lists (limits: see the README)", file=path,
                                    line=event.start_mark.line + 1 if event.start_mark else None)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def _expanded_size(root: yaml.Node, path: Path) -> None:
    """Count values and depth as if every alias were copied out; refuse bombs and recursive aliases."""
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def measure(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError("an alias refers to the mapping or list that contains it (recursive alias)",
                            file=path, line=node.start_mark.line + 1)
        active.add(key)
        count, depth = 1, 0
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        for child in children:
            c, d = measure(child)
            count, depth = count + c, max(depth, d + 1)
            if count > MAX_NODES or depth > MAX_DEPTH:
                what = f"more than {MAX_NODES:,} values" if count > MAX_NODES else f"nested more than {MAX_DEPTH} deep"
                raise SpecError(f"expands to {what} once its aliases (*name) are copied out: an alias bomb? "
                                "(limits: see the README)", file=path, line=node.start_mark.line + 1)
        active.discard(key)
        sizes[key] = (count, depth)
        return count, depth

    measure(root)


def _yaml_hint(problem: str, text: str, line: int | None) -> str:
    """A friendly hint for YAML traps a parser message does not explain."""
    lines = text.splitlines()
    here = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
    if "\t" in problem or "\\t" in problem or "\t" in here[: len(here) - len(here.lstrip())]:
        return " (YAML indents with spaces only: replace the tab)"
    return ""


def _parse(path: Path) -> tuple[Any, _PositionIndex]:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"the spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} (1 MiB): is this the right file?",
                            file=path)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc.__class__.__name__}: {exc}", file=path) from None
    loader = None
    try:
        _bounded_events(text, path)
        loader = _UniqueKeyLoader(text)
        root = loader.get_single_node()  # type: ignore[no-untyped-call]
        if root is not None:
            _expanded_size(root, path)
        data = loader.construct_document(root) if root is not None else None  # type: ignore[no-untyped-call]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark else None
        raise SpecError(f"invalid YAML: {problem}{_yaml_hint(problem, text, line)}", file=path, line=line) from None
    finally:
        if loader is not None:
            loader.dispose()  # type: ignore[no-untyped-call]
    if not isinstance(data, dict):
        raise SpecError("the spec must be a YAML mapping with at least a 'models' list", file=path, line=1)
    return data, _PositionIndex(root)


_YAML_BOOLEANS = {"y", "n", "yes", "no", "on", "off", "true", "false"}


def _vocabulary() -> list[str]:
    """Every key a spec may use, for "did you mean" hints."""
    from .base import StrictModel

    names: set[str] = set()
    pending = [StrictModel]
    while pending:
        cls = pending.pop()
        names.update(cls.model_fields)
        pending.extend(cls.__subclasses__())
    return sorted(names)


def _message(error: ErrorDetails, source: str | None) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        close = difflib.get_close_matches(key, _vocabulary(), n=1, cutoff=0.6)
        msg = f"unknown key {key!r}; did you mean {close[0]!r}?" if close else \
            f"unknown key {key!r} (remove it or check its spelling against `trgen schema`)"
    elif error["type"] == "missing":
        msg = "required field is missing"
    elif error["type"] == "literal_error":
        msg = f"{msg} (got {error.get('input')!r})"
    if isinstance(error.get("input"), bool) and source is not None and source.lower() in _YAML_BOOLEANS:
        msg += f" (YAML reads a bare {source} as {str(error['input']).lower()}: quote it, '{source}')"
    return msg


def load_spec(path: str | Path, *, check_files: bool = True, trust_code: bool = False) -> Spec:
    """Read and validate a spec. Raises `SpecError`, or `ProblemList` of them, with file:line and field.

    Every problem pydantic finds is reported (one line each), then the cross-field rules run.
    `trust_code` (the --trust-code flag) lets `callable` data sources run; so does `trust_code: true`.
    """
    return load_spec_located(path, check_files=check_files, trust_code=trust_code)[0]


def load_spec_located(
    path: str | Path, *, check_files: bool = True, trust_code: bool = False
) -> tuple[Spec, LineOf]:
    """`load_spec`, and the function mapping a field path to its line, for checks that come later."""
    path = Path(path)
    data, positions = _parse(path)
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}  # anchors' home
    context = {
        "base_dir": path.parent.resolve(), "check_files": check_files,
        "trust_code": trust_code or data.get("trust_code") is True,
    }
    try:
        spec = Spec.model_validate(data, context=context)
    except ValidationError as exc:
        problems: list[GeneratorError] = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line, field = positions.line(loc)
            problems.append(SpecError(_message(error, positions.source(loc)), file=path, line=line, field=field))
        problems.sort(key=lambda p: (p.line or 0) if isinstance(p, SpecError) else 0)
        raise (problems[0] if len(problems) == 1 else ProblemList(problems)) from None

    from .checks import check_spec

    check_spec(spec, path, positions.line)
    return spec, positions.line
