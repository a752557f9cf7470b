"""Session fixtures shared by the completion suite and the CLI tests: the tiny synthetic catalogue
and tiny random models saved to folders (:mod:`mmpc.completion.tiny`: real configs, random
weights, processors and tokenizers built in code). A conftest imports the ones it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmpc.completion.catalog import Catalog, synthesize
from mmpc.completion.tiny import (
    save_tiny_causal_lm,
    save_tiny_gemma3,
    save_tiny_qwen2_5_vl,
    save_tiny_sd3,
)

__all__ = ["tiny_catalog", "tiny_gemma", "tiny_llm", "tiny_qwen", "tiny_sd3"]


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return synthesize(preset="tiny", seed=0, out=tmp_path_factory.mktemp("catalog") / "cat")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_qwen2_5_vl(tmp_path_factory.mktemp("models") / "qwen")


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma3(tmp_path_factory.mktemp("models") / "gemma")


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_causal_lm(tmp_path_factory.mktemp("models") / "llm")


@pytest.fixture(scope="session")
def tiny_sd3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd3(tmp_path_factory.mktemp("models") / "sd3")
