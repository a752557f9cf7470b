"""Fixtures of the CLI tests: the tiny catalogue, tiny random models and raw data they run on.

The builders are shared with the package suites: models from :mod:`mmpc.completion.tiny`, MMRec
data, Amazon raw files and the tiny Llama policy from ``tests/_fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._fixtures.amazon_raw import write_amazon_raw
from tests._fixtures.mmrec import make_mmrec_folder
from tests._fixtures.tiny_llama import build_tiny_llama, write_short_template

from mmpc.completion.catalog import Catalog, synthesize


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the tiny models: faster on the shared two-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return synthesize(preset="tiny", seed=0, out=tmp_path_factory.mktemp("catalog") / "cat")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmpc.completion.tiny import save_tiny_qwen2_5_vl

    return save_tiny_qwen2_5_vl(tmp_path_factory.mktemp("models") / "qwen")


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmpc.completion.tiny import save_tiny_gemma3

    return save_tiny_gemma3(tmp_path_factory.mktemp("models") / "gemma")


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmpc.completion.tiny import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("models") / "llm")


@pytest.fixture(scope="session")
def tiny_sd3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmpc.completion.tiny import save_tiny_sd3

    return save_tiny_sd3(tmp_path_factory.mktemp("models") / "sd3")


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
