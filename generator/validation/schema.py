"""Triton's own config schema (tritonclient's generated `model_config_pb2`), loaded cheaply.

`from tritonclient.grpc import model_config_pb2` runs `tritonclient/grpc/__init__.py`, which imports
grpc and the whole gRPC client (about 0.15 s). The generated module itself only needs
google.protobuf, so when the client is not loaded yet we execute that one file under its real
module name: a later `import tritonclient.grpc` then finds it in `sys.modules` and reuses it, so the
descriptor pool sees the file once and message classes stay identical.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import GeneratorError

_NAME = "tritonclient.grpc.model_config_pb2"


@functools.cache
def pb2() -> ModuleType:
    """The `model_config_pb2` module (GeneratorError when tritonclient[grpc] is not installed)."""
    if _NAME in sys.modules or "tritonclient.grpc" in sys.modules:
        from tritonclient.grpc import model_config_pb2

        return model_config_pb2
    try:
        root = importlib.util.find_spec("tritonclient")
    except (ImportError, ValueError):
        root = None
    locations = list(root.submodule_search_locations or []) if root else []
    for location in locations:
        path = Path(location) / "grpc" / "model_config_pb2.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(_NAME, path)
            if spec is None or spec.loader is None:
                break
            module = importlib.util.module_from_spec(spec)
            sys.modules[_NAME] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[_NAME]
                raise
            return module
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise GeneratorError("validation needs tritonclient[grpc]: pip install 'tritonclient[grpc]'") from None
    return model_config_pb2


def parse(text: str) -> Any:
    """A ModelConfig from config.pbtxt text; text_format.ParseError (with line and column) if invalid."""
    from google.protobuf import text_format

    return text_format.Parse(text, pb2().ModelConfig())


def enum_name(enum: Any, value: int) -> str:
    """Name of an enum value, or the number itself for values the schema does not know (proto3)."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)
