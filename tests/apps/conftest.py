"""Fixtures of the CLI tests: the tiny catalogue, tiny random models and raw data they run on.

The builders are shared with the package suites: models from :mod:`mmpc.completion.tiny`, MMRec
data, Amazon raw files and the tiny Llama policy from ``tests/_fixtures``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests._fixtures.amazon_raw import write_amazon_raw
from tests._fixtures.completion_models import (  # noqa: F401  (fixtures)
    tiny_catalog,
    tiny_gemma,
    tiny_llm,
    tiny_qwen,
    tiny_sd3,
)
from tests._fixtures.mmrec import make_mmrec_folder
from tests._fixtures.tiny_llama import build_tiny_llama, write_short_template


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MMRec folder (interactions + text/image features)."""
    return make_mmrec_folder(tmp_path_factory.mktemp("tiny_mmrec"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def short_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_short_template(tmp_path_factory.mktemp("template") / "t2i_short.yaml")


@pytest.fixture
def amazon_raw(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Plain ``.jsonl`` Amazon-schema files with every bad-input case; (root, expectations)."""
    return tmp_path / "raw", write_amazon_raw(tmp_path / "raw")
