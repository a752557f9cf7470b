"""A quiet console for the Lightning-driven commands and the bench stages that train or load models.

By default :func:`quiet_libraries` silences library chatter that is not about the user's run:
Lightning's device lines ("GPU available", "TPU available", ...), its advertisement tips, "Seed
set to", the ``log_every_n_steps`` and IterableDataset ``__len__`` warnings, transformers'
"Loading weights" bar and similar. Warnings
about the user's data or config are left alone. ``mmpc --verbose`` (or ``MMPC_VERBOSE=1``, which
worker processes inherit) brings everything back. The filters are scoped: loggers get their level
back and the warning filters are restored when the block ends.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "CHATTER_LOGGERS",
    "CHATTER_WARNINGS",
    "VERBOSE_ENV",
    "quiet_libraries",
    "verbose",
]

VERBOSE_ENV = "MMPC_VERBOSE"

#: Loggers whose INFO records are library chatter (device lines, tips, "Seed set to", "`Trainer.fit`
#: stopped", checkpoint restore notes); their warnings and errors still show.
CHATTER_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
    "lightning.pytorch.accelerators.cuda",
)

#: Warnings (message regex) that say nothing about the user's data or config.
CHATTER_WARNINGS = (
    r"Your `IterableDataset` has `__len__` defined",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"The '\w+' does not have many workers which may be a bottleneck",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"Starting from v1\.9\.0, `tensorboardX` has been removed as a dependency",
    r"The `srun` command is available on your system but is not used",
    r"Found \d+ module\(s\) in eval mode at the start of training",
    r"`torch\.jit\.script` is deprecated",
)


def verbose() -> bool:
    """Whether ``--verbose`` / ``MMPC_VERBOSE=1`` asked for the library chatter."""
    return os.environ.get(VERBOSE_ENV) == "1"


@contextmanager
def quiet_libraries(loud: bool | None = None) -> Iterator[None]:
    """Silence :data:`CHATTER_LOGGERS`' INFO records and :data:`CHATTER_WARNINGS` in the block.

    Args:
        loud: keep the chatter; None reads ``MMPC_VERBOSE``.
    """
    if verbose() if loud is None else loud:
        yield
        return
    loggers = [logging.getLogger(name) for name in CHATTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    hf_bars = _transformers_bars()
    bars_were_on = hf_bars is not None and hf_bars.is_progress_bar_enabled()
    with warnings.catch_warnings():
        for pattern in CHATTER_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        if bars_were_on:
            hf_bars.disable_progress_bar()  # "Loading weights" for every model load
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            if bars_were_on:
                hf_bars.enable_progress_bar()


def _transformers_bars():  # type: ignore[no-untyped-def]
    """transformers' progress-bar switch (its "Loading weights" bar), None without transformers.

    Cheap in the Lightning-driven commands, which have imported transformers' dependencies."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    return hf_logging
