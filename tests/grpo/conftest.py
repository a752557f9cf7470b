"""Fixtures of the GRPO tests; the tiny random policy comes from tests/_fixtures/tiny_llama.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests._fixtures.tiny_llama import build_tiny_llama, write_short_template


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The dev box has two shared cores: one intra-op thread is several times faster here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def items() -> list[dict[str, object]]:
    return [
        {"item_id": "i1", "title": "red ceramic mug", "category": "Home"},
        {"item_id": "i2", "title": "blue lamp", "category": "Home"},
    ]


@pytest.fixture(scope="session")
def short_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short t2i template (few tokens), so the tiny-model tests stay fast on two cores."""
    return write_short_template(tmp_path_factory.mktemp("template") / "t2i_short.yaml")
