"""Every validation rule, one family per module; a rule takes a `ModelUnderCheck` and yields `Finding`s."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..problems import Finding
from ..subject import ModelUnderCheck
from . import (
    batching,
    ensemble,
    ensemble_members,
    files,
    instances,
    io,
    model,
    model_file,
    sequence,
)

Rule = Callable[[ModelUnderCheck], Iterator[Finding]]
RULES: dict[str, Rule] = {}
for _family in (model, io, batching, sequence, instances, ensemble, ensemble_members, files, model_file):
    RULES.update(_family.RULES)

__all__ = ["RULES", "Rule"]
