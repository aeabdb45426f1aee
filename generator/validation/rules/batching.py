"""Dynamic batching, priority levels and queue policies (core `ValidateModelConfig`)."""

from __future__ import annotations

from collections.abc import Iterator

from ..locator import Key
from ..problems import Finding
from ..schema import pb2
from ..subject import ModelUnderCheck

_DB = "dynamic_batching"


def preferred_sizes(m: ModelUnderCheck) -> Iterator[Finding]:
    """Preferred batch sizes > 0 and <= max_batch_size."""
    mbs = m.config.max_batch_size
    for k, size in enumerate(m.config.dynamic_batching.preferred_batch_size):
        where = (_DB, "preferred_batch_size", k)
        if size <= 0:
            yield Finding(where, f"dynamic batching preferred size must be positive for {m.name} (got {size})")
        elif size > mbs:
            yield Finding(where, f"dynamic batching preferred size must be <= max batch size for {m.name} "
                          f"({size} > max_batch_size {mbs})")


def priorities(m: ModelUnderCheck) -> Iterator[Finding]:
    """With priority_levels set, default_priority_level and every priority_queue_policy key are in [1, levels]."""
    batching = m.config.dynamic_batching
    levels = batching.priority_levels
    if levels == 0:
        return
    default = batching.default_priority_level
    if default == 0 or default > levels:
        where = (_DB, "default_priority_level") if default else (_DB, "priority_levels")
        yield Finding(where, f"default priority level must be in range [1, {levels}] for {m.name} (got {default})")
    for key in sorted(batching.priority_queue_policy):
        if key == 0 or key > levels:
            yield Finding((_DB, "priority_queue_policy", Key(str(key))),
                          f"priority queue policy must have priority level in range [1, {levels}] for {m.name} "
                          f"(got {key})")


def preserve_ordering(m: ModelUnderCheck) -> Iterator[Finding]:
    """preserve_ordering allows one priority level and no queue policy that DELAYs timed-out requests."""
    batching = m.config.dynamic_batching
    if not batching.preserve_ordering:
        return
    if batching.priority_levels > 1:
        yield Finding((_DB, "priority_levels"),
                      f"Only one priority level is allowed when 'preserve_ordering' is true for {m.name}")
    delay = pb2().ModelQueuePolicy.DELAY
    message = f"Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for {m.name}"
    policy = batching.default_queue_policy
    if policy.default_timeout_microseconds and policy.timeout_action == delay:
        yield Finding((_DB, "default_queue_policy", "timeout_action"), message)
    for key in sorted(batching.priority_queue_policy):
        policy = batching.priority_queue_policy[key]
        if policy.default_timeout_microseconds and policy.timeout_action == delay:
            yield Finding((_DB, "priority_queue_policy", Key(str(key))), message)


RULES = {
    "dynamic-batching": preferred_sizes,
    "priority-levels": priorities,
    "preserve-ordering": preserve_ordering,
}
