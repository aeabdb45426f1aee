"""Jinja2 rendering of config.pbtxt and model.py, and the schema check every config passes first.

Templates ship as package data of `generator.templates` (the repository's templates/ folder) and are
read through importlib.resources, so they work from a wheel as well as from a checkout.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import GeneratorError

if TYPE_CHECKING:
    import jinja2
    from tritonclient.grpc import model_config_pb2

PYTHON_MODEL_TEMPLATE = "python_model.py.j2"


def _load(name: str) -> str:
    """Template source by '/'-separated name under generator.templates."""
    node = resources.files("generator.templates")
    for part in name.split("/"):
        node = node.joinpath(part)
    if not node.is_file():
        raise GeneratorError(f"template {name} is missing from the trgen installation: reinstall trgen")
    return node.read_text(encoding="utf-8")


def _quote(value: Any) -> str:
    """A text-format string literal (C escapes, UTF-8 kept readable)."""
    from google.protobuf import text_encoding

    escaped: str = text_encoding.CEscape(str(value), as_utf8=True)
    return f'"{escaped}"'


def _dims(values: Any) -> str:
    return "[ " + ", ".join(str(int(v)) for v in values) + " ]" if values else "[ ]"


def _bool(value: Any) -> str:
    return "true" if value else "false"


@functools.cache
def environment() -> "jinja2.Environment":
    """StrictUndefined: a missing context key is a bug, never an empty string in a config."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (_load(name), None, lambda: True)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(q=_quote, dims=_dims, pbool=_bool)
    return env


def render_config_text(context: dict[str, Any]) -> str:
    """config.pbtxt text for a context from `context.build_context`, checked against the schema."""
    text = environment().get_template(f"config/{context['platform']}.pbtxt.j2").render(c=context)
    text = "\n".join(line.rstrip() for line in text.strip("\n").split("\n")) + "\n"
    from google.protobuf import text_format

    try:
        parse_config(text)
    except text_format.ParseError as exc:  # the templates produced something Triton would reject: our bug
        raise RuntimeError(f"rendered config.pbtxt for {context['name']} does not parse: {exc}\n{text}") from exc
    return text


def parse_config(text: str) -> "model_config_pb2.ModelConfig":
    """Parse with Triton's own schema; text_format.ParseError (it carries line:col) if invalid."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def render_python_model(variant: str, onnx_file: str) -> str:
    """model.py for a python-onnxruntime variant."""
    return environment().get_template(PYTHON_MODEL_TEMPLATE).render(variant=variant, onnx_file=onnx_file)
