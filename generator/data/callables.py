"""`callable` data sources: `package.module:function(**args)` yielding dicts of input name -> batch array.

This imports and runs the user's code: only with the user's consent (see the spec's trust setting).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature
from ..spec.data import CallableSource
from .arrays import Chunk


def callable_chunks(source: CallableSource, signature: Signature) -> Iterator[Chunk]:
    where = f"data callable {source.callable}"
    if not source.trusted:
        raise GeneratorError(
            "the spec asks to import and run this Python code: pass --trust-code (or set trust_code: true in the "
            "spec) if you trust it", where=where,
        )
    function = resolve_callable(source.callable, folder=source.folder)
    names = {t.name for t in signature.inputs}
    try:
        iterator = iter(function(**source.args))
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            yield _callable_item(item, names, where)
    except GeneratorError:
        raise
    except Exception as exc:  # user code: any failure becomes one line naming the callable
        raise GeneratorError(f"raised {exc.__class__.__name__}: {exc}", where=where) from None


def _callable_item(item: Any, names: set[str], where: str) -> Chunk:
    if not isinstance(item, Mapping):
        raise GeneratorError(f"yielded a {type(item).__name__}: it must yield dicts of input name -> batch array", where=where)
    inputs: dict[str, np.ndarray] = {}
    labels = None
    for key, value in item.items():
        if key == "labels" and key not in names:
            labels = np.asarray(value)
        else:
            inputs[str(key)] = np.asarray(value)
    if not inputs:
        raise GeneratorError("yielded a dict with no input arrays", where=where)
    return inputs, labels


def resolve_callable(reference: str, *, folder: Path | None = None) -> Any:
    """Import `package.module:function` (runs the module's code) and return the function.

    `folder` (the spec's) is searched first while importing, so `mydata:batches` finds mydata.py beside it.
    """
    module_name, _, attr = reference.partition(":")
    where = f"data callable {reference}"
    added = folder is not None and str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        hint = " (is it beside the spec, installed, or on PYTHONPATH?)" if isinstance(exc, ModuleNotFoundError) else ""
        raise GeneratorError(f"cannot import {module_name!r}: {exc.__class__.__name__}: {exc}{hint}", where=where) from None
    finally:
        if added:
            sys.path.remove(str(folder))
    function = getattr(module, attr, None)
    if not callable(function):
        raise GeneratorError(f"module {module_name!r} has no function {attr!r}", where=where)
    return function
