"""Validation as a whole: every rule has a failing and a passing row, and the validate path stays light
(no heavy imports: the CLI must answer in a fraction of a second)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from generator.validation.rules import RULES
from tests.render import (
    test_validate_rules,
    test_validation_ensembles,
    test_validation_families,
)

HEAVY = ("onnx", "onnxruntime", "numpy", "matplotlib", "pydantic", "jinja2", "grpc", "tritonclient.grpc.aio",
         "tritonclient.http", "generator.spec", "generator.render", "yaml")


def test_every_rule_has_a_row() -> None:
    rows = test_validate_rules.CASES + test_validation_families.CASES + test_validation_ensembles.CASES
    assert set(RULES) <= {c.rule for c in rows}, set(RULES) - {c.rule for c in rows}


def test_validate_command_imports_nothing_heavy(tmp_path: Path) -> None:
    """The `validate` command (render_cmds + generator.validation) on a one-model repository with an ONNX file
    loads none of the heavy modules. (What the other command groups import at registration is theirs.)"""
    from tests.render.validation_cases import ORT, make_repo, onnx

    repo = make_repo(tmp_path / "repo", ORT, {"1/model.onnx": onnx(["batch", 3])}, {})
    code = (
        "import argparse, json, sys\n"
        "from generator.cli import render_cmds\n"
        "parser = argparse.ArgumentParser()\n"
        "render_cmds.register(parser.add_subparsers())\n"
        f"args = parser.parse_args(['validate', {str(repo)!r}])\n"
        "rc = args.func(args)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "heavy": []}, out.stdout + out.stderr
