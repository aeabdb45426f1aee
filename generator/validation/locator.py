"""Line numbers of fields in a protobuf text-format file (config.pbtxt).

The Python protobuf runtime has no parse-info tree (C++ has `TextFormat::ParseInfoTree`, Python does
not), so this is a small tokenizer that records where each field occurrence starts. It runs only on
text that `text_format.Parse` already accepted, so it can assume the grammar is valid.

A location is a path of field names, occurrence indices and `Key`s (map entries by key), e.g.
`("input", 0, "dims", 1)` or `("parameters", Key("onnx_file"))`. A name not followed by an index means
its first occurrence. A path that is not in the text falls back to its longest present prefix, then 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""(?P<space>\s+|\#[^\n]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<punct>[{}\[\]<>:,;])
      | (?P<word>[^\s{}\[\]<>:,;"'\#]+)""",
    re.VERBOSE,
)
_CLOSE = {"{": "}", "<": ">"}


@dataclass(frozen=True)
class Key:
    """A map entry (`parameters`, `model_warmup.inputs`, ...) selected by its key."""

    value: str


Part = str | int | Key
Path = tuple[Part, ...]


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, 1-based line) pairs, comments and white space dropped."""
    out: list[tuple[str, int]] = []
    line = 1
    for match in _TOKEN.finditer(text):
        if match.lastgroup != "space":
            out.append((match.group(), line))
        line += match.group().count("\n")
    return out


class Locator:
    """Maps field paths of one parsed config.pbtxt to the line where they are written."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        self._keys: dict[Path, str] = {}  # message occurrence -> its `key:` value (map entries)
        self._tokens = _tokens(text)
        self._pos = 0
        self._message((), end=None)

    # -- parsing ---------------------------------------------------------------------------------
    def _peek(self) -> str:
        return self._tokens[self._pos][0] if self._pos < len(self._tokens) else ""

    def _take(self) -> tuple[str, int]:
        token = self._tokens[self._pos]
        self._pos += 1
        return token

    def _message(self, path: Path, end: str | None) -> None:
        counts: dict[str, int] = {}
        while self._pos < len(self._tokens) and self._peek() != end:
            name = self._take()[0]
            if name == "[":  # extension or Any type URL: skip to the closing bracket
                while self._take()[0] != "]":
                    pass
                name = "[ext]"
            if self._peek() == ":":
                self._take()
            if self._peek() == "[":
                self._take()
                while self._peek() != "]":
                    self._value(path, name, counts)
                    if self._peek() == ",":
                        self._take()
                self._take()
            else:
                self._value(path, name, counts)
            if self._peek() in {",", ";"}:
                self._take()
        if end is not None and self._pos < len(self._tokens):
            self._take()

    def _value(self, path: Path, name: str, counts: dict[str, int]) -> None:
        index = counts.get(name, 0)
        counts[name] = index + 1
        here = path + (name, index)
        token, token_line = self._take()
        self._lines[here] = token_line
        if token in _CLOSE:
            self._message(here, end=_CLOSE[token])
            return
        while self._peek()[:1] in {'"', "'"} and token[:1] in {'"', "'"}:  # "a" "b" concatenation
            self._take()
        if name == "key":
            self._keys[path] = token.strip("\"'")

    # -- lookup ----------------------------------------------------------------------------------
    def _normalise(self, path: Path) -> Path:
        """Insert the implicit occurrence 0 after names and resolve `Key`s to occurrences."""
        out: Path = ()
        for i, part in enumerate(path):
            if isinstance(part, Key):
                out += (self._entry(out, part.value),)
                continue
            out += (part,)
            following = path[i + 1] if i + 1 < len(path) else None
            if isinstance(part, str) and not isinstance(following, (int, Key)):
                out += (0,)
        return out

    def _entry(self, field: Path, key: str) -> int:
        index = 0
        while field + (index,) in self._lines:
            if self._keys.get(field + (index,)) == key:
                return index
            index += 1
        return -1

    def line(self, path: Path) -> int:
        """Line of the field at `path`, else of its nearest written parent, else 1."""
        full = self._normalise(path)
        while full:
            for candidate in (full, full + (0,)):  # (field,) falls back to its first occurrence
                if candidate in self._lines:
                    return self._lines[candidate]
            full = full[:-1]
        return 1
