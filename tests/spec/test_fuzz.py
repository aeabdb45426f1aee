"""Property: whatever a user writes in a spec, `trgen check` answers 0 or a one-line error (exit 2).

Hypothesis mutates a valid spec (replace a value with anything, drop a key, add a key, corrupt the
text) and runs the real CLI entry point; a traceback or an internal error (exit 3) fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import main
from tests.conftest import TINY_SPEC, make_tiny_cnn

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["../x", "/etc/passwd", "a/b", "..", "fp16", "int8", "tensorrt", "KIND_GPU"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


def _mutate(doc: dict, path: tuple, action: str, value: Any) -> dict:
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent[last], dict):
        parent[last]["extra_" + str(abs(hash(str(value))) % 97)] = value
    return doc


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    folder = tmp_path_factory.mktemp("fuzz")
    make_tiny_cnn(folder / "tiny.onnx")
    np.savez(folder / "data.npz", input=np.zeros((4, 1, 8, 8), np.float32), labels=np.zeros(4, np.int64))
    return folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), action=st.sampled_from(["replace", "delete", "add"]), value=values)
def test_structural_mutations_never_escape(workspace: Path, data: st.DataObject, action: str, value: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(TINY_SPEC)
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _mutate(doc, path, action, value)
    spec = workspace / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc) if isinstance(doc, (dict, list)) else repr(doc))
    _assert_clean_exit(spec, capsys)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, len(TINY_SPEC)), junk=st.text(min_size=1, max_size=6))
def test_text_corruption_never_escapes(workspace: Path, position: int, junk: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    spec = workspace / "spec.yaml"
    spec.write_text(TINY_SPEC[:position] + junk + TINY_SPEC[position:], encoding="utf-8", errors="surrogatepass")
    _assert_clean_exit(spec, capsys)


def _assert_clean_exit(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(spec)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:  # one line per problem, every one of them
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("trgen: error: ") for line in lines), err
        assert "Traceback" not in err


# ---------------------------------------------------------------- bombs and numeric extremes (issue 9)

def _alias_bomb(levels: int, fanout: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]")
    return "\n".join(lines) + "\n" + TINY_SPEC


def _deep(depth: int, kind: str) -> str:
    if kind == "flow-list":
        return "models: " + "[" * depth + "]" * depth + "\n"
    if kind == "flow-map":
        return "models: " + "{a: " * depth + "1" + "}" * depth + "\n"
    return "models:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth)) + "  " * (depth + 1) + "v: 1\n"


NUMBERS = st.one_of(
    st.integers(-(2**80), 2**80), st.sampled_from([2**31, 2**31 - 1, -(2**31) - 1, 2**63, 10**30]),
    st.sampled_from([".inf", "-.inf", ".nan", "1e30", "1.0e+30", "-0", "0x7fffffffffffffff", "1_000_000_000_000"]),
    st.floats(allow_nan=True, allow_infinity=True),
)
NUMERIC_FIELDS = [
    "    max_batch_size: 8\n", "          samples: 32\n", "          batch_size: 8\n",
    "    preferred_batch_sizes: [4, 8]\n",
]


def _assert_refused_and_nothing_written(workspace: Path, spec: Path, capsys: pytest.CaptureFixture[str],
                                        command: str = "render") -> int:
    before = sorted(p.name for p in workspace.iterdir())
    code = main([command, str(spec)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("trgen: error: ") for line in lines), err
        assert sorted(p.name for p in workspace.iterdir()) == before  # nothing written before exit 2
    return code


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(6, 12), fanout=st.integers(6, 10))
def test_alias_bombs_are_refused_quickly(workspace: Path, levels: int, fanout: int,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import time

    spec = workspace / "spec.yaml"
    spec.write_text(_alias_bomb(levels, fanout))
    start = time.monotonic()
    code = _assert_refused_and_nothing_written(workspace, spec, capsys)
    assert time.monotonic() - start < 5.0
    if fanout ** (levels - 1) > 100_000:
        assert code == 2


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(33, 20_000), kind=st.sampled_from(["flow-list", "flow-map", "block"]))
def test_deep_nesting_is_refused(workspace: Path, depth: int, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = workspace / "spec.yaml"
    spec.write_text(_deep(min(depth, 2000) if kind == "block" else depth, kind))
    assert _assert_refused_and_nothing_written(workspace, spec, capsys) == 2


def test_a_huge_file_is_refused_unread(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = workspace / "spec.yaml"
    spec.write_text(TINY_SPEC + "# " + "x" * (1 << 20) + "\n")
    assert _assert_refused_and_nothing_written(workspace, spec, capsys) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(NUMERIC_FIELDS), number=NUMBERS)
def test_numeric_extremes_never_escape(workspace: Path, field: str, number: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    key = field.split(":")[0]
    text = f"{number}" if isinstance(number, str) else repr(number)
    value = f"[4, {text}]" if "preferred" in field else text
    spec = workspace / "spec.yaml"
    spec.write_text(TINY_SPEC.replace(field, f"{key}: {value}\n"))
    _assert_clean_exit(spec, capsys)
