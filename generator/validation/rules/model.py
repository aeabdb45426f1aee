"""Model-level fields (core `ValidateModelConfig`): name, platform/backend, max_batch_size, runtime,
response cache, model metrics."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ..backends import ENSEMBLE, PLATFORMS, STANDARD_BACKENDS, TYPED_BACKENDS
from ..problems import Finding, warning
from ..subject import ModelUnderCheck


def name(m: ModelUnderCheck) -> Iterator[Finding]:
    """A `name`, when given, equals the model's folder name (the repository manager's check)."""
    if m.config.name and m.config.name != m.folder:
        yield Finding(("name",), f"unexpected directory name '{m.folder}' for model '{m.config.name}', directory name "
                      f"must equal model name (name {m.config.name!r} must equal the folder name {m.folder!r})")


def platform(m: ModelUnderCheck) -> Iterator[Finding]:
    """A backend Triton can determine, a known platform, and a platform/backend pair that agree."""
    c, done = m.config, m.completed
    if done.error:
        yield Finding(("name",), done.error)
        return
    backend, plat = done.backend, done.platform
    if not backend and plat != ENSEMBLE:
        hint = _closest(plat, PLATFORMS)
        yield Finding(("platform",), f"unexpected platform type '{plat}' for {m.name}{hint}")
        return
    if backend and plat == ENSEMBLE:
        yield Finding(("backend",), f"Ensemble model '{m.name}' must have platform type 'ensemble' and empty backend type")
        return
    if backend in TYPED_BACKENDS and PLATFORMS.get(plat) != backend:
        where = ("backend",) if c.backend else ("platform",)
        yield Finding(where, f"unexpected 'platform' and 'backend' pair, got:{plat}, {backend}")
    if c.backend and c.backend not in STANDARD_BACKENDS:
        hint = _closest(c.backend, STANDARD_BACKENDS)
        yield warning(("backend",), f"backend {c.backend!r} is not one of Triton's standard backends: the server "
                      f"needs backends/{c.backend}/ installed{hint}")


def _closest(word: str, known: object) -> str:
    import difflib

    match = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.75)  # type: ignore[call-overload]
    return f" (did you mean {match[0]!r}?)" if match and match[0] else ""


def max_batch_size(m: ModelUnderCheck) -> Iterator[Finding]:
    """max_batch_size >= 0."""
    if m.config.max_batch_size < 0:
        yield Finding(("max_batch_size",), f"'max_batch_size' must be non-negative value for {m.name}")


def runtime(m: ModelUnderCheck) -> Iterator[Finding]:
    """`runtime` names a library inside the backend's folder (core backend_model.cc)."""
    value = m.config.runtime
    if not value:
        return
    folder = f"backends/{m.backend or '<backend>'}"
    resolved = posixpath.normpath(posixpath.join(folder, value.replace("\\", "/")))
    if posixpath.isabs(value) or not resolved.startswith(folder + "/"):
        yield Finding(("runtime",), f"backend library name '{value}' escapes backend directory '{folder}', for model "
                      f"'{m.name}', check model config runtime field")


def response_cache(m: ModelUnderCheck) -> Iterator[Finding]:
    """The response cache supports neither sequence batching nor decoupled models (DLIS-4034, DLIS-3916)."""
    c = m.config
    if not c.response_cache.enable:
        return
    if c.HasField("sequence_batching"):
        yield Finding(("response_cache",), f"Response Cache does not currently support model {m.name} with sequence "
                      "batching scheduler. Please disable the response cache.")
    if c.model_transaction_policy.decoupled:
        yield Finding(("response_cache",), f"Response Cache does not currently support model {m.name} with "
                      "'decoupled' transaction policy. Please disable the response cache.")


def model_metrics(m: ModelUnderCheck) -> Iterator[Finding]:
    """Each metric_control names a metric family and gives histogram buckets (ValidateModelMetrics)."""
    for k, control in enumerate(m.config.model_metrics.metric_control):
        where = ("model_metrics", "metric_control", k)
        if not control.HasField("metric_identifier"):
            yield Finding(where, "metric control must specify 'metric_identifier'")
        elif not control.metric_identifier.family:
            yield Finding(where + ("metric_identifier",), "metric identifier must specify non-empty 'family'")
        if not control.HasField("histogram_options"):
            yield Finding(where, "metric control must specify 'histogram_options'")
        elif not control.histogram_options.buckets:
            yield Finding(where + ("histogram_options",), "histogram options must specify non-empty 'buckets'")


RULES = {
    "name": name,
    "platform": platform,
    "max-batch-size": max_batch_size,
    "runtime": runtime,
    "response-cache": response_cache,
    "model-metrics": model_metrics,
}
