"""The build child process: `python -m generator.engine.build_process REQUEST` (started by `child.build_isolated`).

A module of its own, not imported by the `generator.engine` package, so `-m` runs it fresh.
"""

from __future__ import annotations

import logging
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

from ..errors import GeneratorError, RuntimeFailure
from .child import load_reference
from .job import build_engine


def main(argv: list[str]) -> int:
    """The child: build as the request says, pickle {'ok': BuildOutput} / {'error': ...} / {'bug': traceback}."""
    request = pickle.loads(Path(argv[0]).read_bytes())
    logging.basicConfig(level=request["log_level"], format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    outcome: dict[str, Any]
    try:
        trt = load_reference(request["trt"])
        outcome = {"ok": build_engine(trt, request["plan"], calibration_batches=request["batches"])}
    except GeneratorError as exc:
        outcome = {"error": (type(exc).__name__ if isinstance(exc, RuntimeFailure) else "GeneratorError", str(exc))}
    except Exception:  # noqa: BLE001 - reported to the parent as a trgen bug, with the traceback
        outcome = {"bug": traceback.format_exc()}
    target = Path(request["result"])
    partial = target.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(outcome))
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
