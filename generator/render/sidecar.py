"""`model.plan.json`: a TensorRT engine's signature, readable without TensorRT.

The build stage writes it beside each plan (it has TensorRT open anyway), the renderer copies it next
to `model.plan` in the repository, and `trgen validate` checks config.pbtxt against it on machines
without TensorRT. Format (JSON, UTF-8, keys sorted)::

    {
      "format": "trgen-engine-signature",
      "version": 1,
      "inputs":  [{"name": "input",  "dtype": "fp32", "shape": [-1, 1, 28, 28]}],
      "outputs": [{"name": "logits", "dtype": "fp32", "shape": [-1, 10]}],
      "profiles": [{"input": {"min": [1, 1, 28, 28], "opt": [32, 1, 28, 28], "max": [64, 1, 28, 28]}}]
    }

`dtype` is the short name of `generator.signature.DTYPES` ('fp32', 'fp16', 'int8', ...); shapes are
full engine shapes including the batch dimension, -1 where dynamic; `profiles` has one object per
optimisation profile, input name -> min/opt/max shapes (empty list for static engines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GeneratorError
from ..fileio import atomic_write_text
from ..signature import DTYPES, Signature, TensorSig

FORMAT = "trgen-engine-signature"
VERSION = 1
SUFFIX = ".json"  # model.plan -> model.plan.json


def sidecar_path(plan: Path) -> Path:
    """Where the signature of `plan` lives: `<plan>.json`."""
    return plan.with_name(plan.name + SUFFIX)


def engine_signature_json(signature: Signature) -> str:
    """The sidecar text for `signature` (deterministic: sorted keys, trailing newline)."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "inputs": [_tensor(t) for t in signature.inputs],
        "outputs": [_tensor(t) for t in signature.outputs],
        "profiles": [
            {name: {"min": list(lo), "opt": list(opt), "max": list(hi)} for name, (lo, opt, hi) in p.items()}
            for p in signature.profiles
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_engine_signature(path: Path, signature: Signature) -> None:
    """Write the sidecar atomically (temp file beside it, then os.replace)."""
    atomic_write_text(path, engine_signature_json(signature))


def engine_signature_from_json(path: Path) -> Signature:
    """Read a sidecar written by `write_engine_signature`; GeneratorError if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} v{VERSION} file")
        return Signature(
            inputs=tuple(_sig(t) for t in data["inputs"]),
            outputs=tuple(_sig(t) for t in data["outputs"]),
            profiles=tuple(
                {name: (_shape(r["min"]), _shape(r["opt"]), _shape(r["max"])) for name, r in p.items()}
                for p in data.get("profiles", [])
            ),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GeneratorError(
            f"unreadable engine signature ({exc.__class__.__name__}: {exc}): rebuild the engine with `trgen build`",
            where=path,
        ) from None


def _tensor(t: TensorSig) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}


def _sig(data: dict[str, Any]) -> TensorSig:
    if data["dtype"] not in DTYPES:
        raise ValueError(f"unknown dtype {data['dtype']!r}")
    return TensorSig(str(data["name"]), str(data["dtype"]), _shape(data["shape"]))


def _shape(values: list[Any]) -> tuple[int, ...]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1) for v in values):
        raise ValueError(f"bad shape {values!r}")
    return tuple(values)
