"""Fixtures for the bench tests: one embedded server on the trivial repository per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from generator.measure.trivial import TRIVIAL_MODELS, write_trivial_repository


@pytest.fixture(scope="module")
def trivial_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A ServerHandle of the bundled tritonserver serving the trivial `add` models."""
    from generator.serve import EmbeddedServer

    root = tmp_path_factory.mktemp("bench_repo")
    repository = write_trivial_repository(root / "repo")
    with EmbeddedServer(repository, list(TRIVIAL_MODELS), log_path=root / "server.log", timeout_s=90) as handle:
        yield handle
