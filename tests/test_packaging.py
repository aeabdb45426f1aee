"""The wheel ships every package: pyproject.toml lists each folder of generator/ that has an __init__.py.

An editable install finds unlisted subpackages anyway, so only a check like this notices one that
a real (non-editable) install would leave out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "generator").rglob("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "generator.templates" in listed  # templates/ ships inside the wheel as generator.templates
