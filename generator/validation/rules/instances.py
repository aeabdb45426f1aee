"""Instance groups (core `ValidateInstanceGroup`) and the optimisation settings only TensorRT reads.

Which GPU ids exist, and whether the server was built with GPU support, is host state: those checks
stay with the server. A negative id is never a GPU, so it is decided here.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..problems import Finding, warning
from ..schema import pb2
from ..subject import ModelUnderCheck


def instance_groups(m: ModelUnderCheck) -> Iterator[Finding]:
    """KIND_CPU / KIND_MODEL groups list no gpus; no negative gpu ids."""
    kind = pb2().ModelInstanceGroup.Kind
    for g, group in enumerate(m.config.instance_group):
        label = group.name or f"{m.name}_{g}"
        where = ("instance_group", g)
        for name in ("KIND_CPU", "KIND_MODEL"):
            if group.kind == kind.Value(name) and group.gpus:
                yield Finding(where + ("gpus",), f"instance group {label} of model {m.name} has kind {name} but "
                              "specifies one or more GPUs")
        for k, gpu in enumerate(group.gpus):
            if gpu < 0:
                yield Finding(where + ("gpus", k), f"instance group {label} of model {m.name} specifies invalid or "
                              f"unsupported gpu id {gpu}")


def profiles(m: ModelUnderCheck) -> Iterator[Finding]:
    """Instance-group `profile` is TensorRT-only; each is the string of a non-negative integer."""
    for g, group in enumerate(m.config.instance_group):
        if not group.profile:
            continue
        label = group.name or f"{m.name}_{g}"
        if not m.is_tensorrt:
            yield Finding(("instance_group", g, "profile"), f"instance group {label} of model {m.name} and platform "
                          f"{m.platform} specifies profile field which is only supported for TensorRT models")
            continue
        for p, profile in enumerate(group.profile):
            where = ("instance_group", g, "profile", p)
            if not profile:
                yield Finding(where, "profile name must not be empty")
            elif not _is_int(profile):
                yield Finding(where, f"unable to parse '{profile}': a profile must be the string of a non-negative "
                              "integer")
            elif int(profile) < 0:
                yield Finding(where, f"instance group {label} of model {m.name} and platform {m.platform} specifies "
                              f"invalid profile {profile}. The field should contain the string representation of a "
                              "non-negative integer.")


def _is_int(text: str) -> bool:
    """What std::stoi accepts: optional sign, then digits (leading white space allowed)."""
    body = text.lstrip()
    body = body[1:] if body[:1] in "+-" else body
    digits = len(body) - len(body.lstrip("0123456789"))
    return digits > 0


def cuda_graphs(m: ModelUnderCheck) -> Iterator[Finding]:
    """optimization.cuda is read by the TensorRT backend only: elsewhere it is silently ignored."""
    if not m.is_tensorrt and m.config.optimization.HasField("cuda"):
        yield warning(("optimization", "cuda"), "optimization.cuda (CUDA graphs) is only used by TensorRT models: the "
                      f"{m.backend or m.platform} backend ignores it")


RULES = {
    "instance-groups": instance_groups,
    "tensorrt-only": profiles,
    "cuda-graphs": cuda_graphs,
}
