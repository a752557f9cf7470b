"""Fixtures of the GRPO tests; the tiny random policy comes from tests/_fixtures/tiny_llama.py."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from tests._fixtures.tiny_llama import build_tiny_llama, write_short_template


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every GRPO test runs its tiny models on one thread (``tests/conftest.py``)."""


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


@pytest.fixture(scope="session")
def grpo_benchmark() -> Callable[[str], ModuleType]:
    """Import a script of ``benchmarks/grpo/`` by its file name (the folder is not a package)."""
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "grpo"

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), folder / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
