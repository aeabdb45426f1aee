"""Rules that span several fields of the spec (pydantic checks one model at a time)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import GeneratorError, ProblemList, SpecError
from .model import Spec

LineOf = Callable[[tuple[str | int, ...]], tuple[int | None, str]]


def check_spec(spec: Spec, path: Path, line_of: LineOf) -> None:
    """Raise every cross-field problem at once: duplicate names, batch sizes, paths, ONNX files."""
    problems: list[GeneratorError] = []

    def fail(loc: tuple[str | int, ...], message: str) -> None:
        line, field = line_of(loc)
        problems.append(SpecError(message, file=path, line=line, field=field))

    for key in ("workdir", "repository"):
        folder = getattr(spec, key)
        if folder.exists() and not folder.is_dir():
            fail((key,), f"{folder} exists and is a file, not a folder: point {key} at a folder (trgen creates it)")
    _check_models(spec, fail)
    if problems:
        unique = ProblemList(problems).problems
        raise unique[0] if len(unique) == 1 else ProblemList(list(unique))


def _check_models(spec: Spec, fail: Callable[[tuple[str | int, ...], str], None]) -> None:

    model_names: set[str] = set()
    variant_names: dict[str, tuple[str | int, ...]] = {}
    caches: dict[Path, str] = {}
    for m, model in enumerate(spec.models):
        if model.name in model_names:
            fail(("models", m, "name"), f"duplicate model name {model.name!r}")
        model_names.add(model.name)
        for v, variant in enumerate(model.variants):
            name = model.variant_name(variant)
            if name in variant_names:
                fail(("models", m, "variants", v), f"two variants are both named {name!r}: give one an explicit 'name'")
            variant_names[name] = ("models", m, "variants", v)
            cache = variant.calibration.cache if variant.calibration is not None else None
            if cache is not None:
                if cache in caches:  # each variant observes its own tensors: they would overwrite each other
                    fail(("models", m, "variants", v, "calibration", "cache"),
                         f"variant {caches[cache]!r} writes the same calibration cache: give each its own file")
                caches[cache] = name
            _check_batching(spec, m, v, fail)
        for p, profile in enumerate(model.profiles):
            for input_name, shapes in profile.items():
                if model.max_batch_size and shapes.max[0] < model.max_batch_size:
                    fail(
                        ("models", m, "profiles", p, input_name),
                        f"profile max batch {shapes.max[0]} is below max_batch_size {model.max_batch_size}: "
                        "raise the profile's max or lower max_batch_size",
                    )
        if model.onnx.exists():
            int8 = any(variant.precision == "int8" for variant in model.variants)
            _check_onnx(model.onnx, ("models", m, "onnx"), fail, int8=int8)


def _check_batching(spec: Spec, m: int, v: int, fail: Callable[[tuple[str | int, ...], str], None]) -> None:
    model = spec.models[m]
    variant = model.variants[v]
    layers = [
        (("models", m, "variants", v, "triton"), variant.triton),
        (("models", m, "triton"), model.triton),
        (("triton",), spec.triton),
    ]
    for loc, settings in layers:  # the nearest layer that sets dynamic_batching wins
        if settings is None or settings.dynamic_batching is None:
            continue
        batching = settings.dynamic_batching
        for i, size in enumerate(batching.preferred_batch_sizes):
            if size > model.max_batch_size:
                fail(
                    loc + ("dynamic_batching", "preferred_batch_sizes", i),
                    f"preferred batch size {size} is above the model's max_batch_size {model.max_batch_size}",
                )
        if batching.enabled and model.max_batch_size == 0:
            fail(loc + ("dynamic_batching",), "dynamic batching needs max_batch_size > 0 on the model")
        return


_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}


def _check_onnx(
    path: Path, loc: tuple[str | int, ...], fail: Callable[[tuple[str | int, ...], str], None], *, int8: bool
) -> None:
    from ..signature import load_onnx  # deferred: onnx is only needed once a spec names a model

    try:
        model = load_onnx(path, external_data=False)
    except GeneratorError as exc:  # reported at the spec line that names the file
        fail(loc, f"{path.name} is {exc.message}")
        return
    quantized = sum(1 for node in model.graph.node if node.op_type in _QDQ_OPS)
    if int8 and quantized:
        fail(loc, f"{path.name} is already quantized ({quantized} QuantizeLinear/DequantizeLinear or integer nodes): "
             "trgen quantizes FP32 models; give the FP32 ONNX, or serve this one with precision: fp32")
