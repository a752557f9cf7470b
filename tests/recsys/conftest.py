"""Tiny generated interaction data in MMRec's format, where interactions depend on features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._fixtures.mmrec import make_mmrec_folder

__all__ = ["make_mmrec_folder"]  # the model tests import it from here


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: the tiny models gain nothing from more, and the dev box is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mmrec_folder(tmp_path_factory.mktemp("tiny_mmrec"))
