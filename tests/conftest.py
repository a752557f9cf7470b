"""Suite-wide test policy: the ``gpu`` marker is handled here, once; ``one_torch_thread`` too.

A test marked ``@pytest.mark.gpu`` is skipped (with the reason shown by ``-ra``) when no CUDA
device is visible, and runs otherwise; no test writes its own ``skipif`` for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the tiny models: several times faster on the shared two-core box."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch  # only when a gpu test was collected: keeps collection light otherwise

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu: needs a CUDA device (none visible)")
    for item in gpu_items:
        item.add_marker(skip)
