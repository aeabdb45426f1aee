"""The specs the benchmarks run on (the bundled example and every committed zoo model), and how a
spec copy made elsewhere keeps pointing at the committed files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "benchmarks" / "zoo"


def model_specs(names: list[str] | None) -> dict[str, Path]:
    """'mnist-example' and each zoo folder with a model, by name (only `names` when given)."""
    found = {"mnist-example": ROOT / "examples/mnist/spec.yaml"}
    for spec in sorted(ZOO.glob("*/spec.yaml")):
        if (spec.parent / "model.onnx").is_file():
            found[spec.parent.name] = spec
    return {k: v for k, v in found.items() if names is None or k in names}


def absolutize(node: Any, base: Path) -> Any:
    """A parsed spec with its model, data and labels-file paths made absolute against `base`."""
    if isinstance(node, dict):
        return {k: (str((base / v).resolve()) if isinstance(v, str) and (k in ("onnx", "path") or k == "labels" and v.endswith(".txt"))
                    else absolutize(v, base)) for k, v in node.items()}
    if isinstance(node, list):
        return [absolutize(v, base) for v in node]
    return node
