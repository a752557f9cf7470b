"""Fixtures of the catalogue tests: synthetic catalogues and Amazon-schema raw files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests._fixtures.amazon_raw import write_amazon_raw

from mmpc.completion.catalog import Catalog, SynthConfig, synthesize


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The ``tiny`` synthetic preset (seed 0), generated once per session; read-only."""
    return synthesize("tiny", seed=0, out=tmp_path_factory.mktemp("tiny") / "catalog")


@pytest.fixture(scope="session")
def signal_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A synthetic catalogue large enough for classifiers: 2 categories x 300 items, 64 px."""
    cfg = SynthConfig(
        counts={"Electronics": (40, 300, 1800), "Toys_and_Games": (40, 300, 1800)},
        image_size=64,
        cqbench_n=50,
        grpo_n=20,
        preset="signal-test",
    )
    return synthesize(cfg, seed=3, out=tmp_path_factory.mktemp("signal") / "catalog")


@pytest.fixture
def amazon_writer() -> Callable[..., dict[str, Any]]:
    """``write_amazon_raw(root, gz=False) -> expectations`` (see its docstring)."""
    return write_amazon_raw


@pytest.fixture
def amazon_raw(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Plain ``.jsonl`` Amazon-schema files with every bad-input case; (root, expectations)."""
    return tmp_path / "raw", write_amazon_raw(tmp_path / "raw")
