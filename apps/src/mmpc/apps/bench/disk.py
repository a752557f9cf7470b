"""A full disk (``ENOSPC``, ``EDQUOT``) anywhere in a run: one error that ends the run.

Every write of a stage goes to its partial folder through append files that drop a torn last
line on reading (:class:`~mmpc.apps.bench.itemlog.ItemLog`, the completion writer) or through
write-aside-and-rename helpers (:mod:`mmpc.metrics.files`), and a stage is trusted only once its
manifest is written and its folder renamed into place. So a run stopped by a full disk leaves
nothing half-written that a rerun would trust: once space is freed, the same command resumes.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = tuple(os.strerror(code) for code in _FULL)  # e.g. torch.save's RuntimeError text


class DiskFullError(RuntimeError):
    """The run folder's filesystem is full; the message is one line naming the folder."""

    def __init__(self, folder: Path | str, stage: str | None = None) -> None:
        self.folder = Path(folder)
        where = f"while stage {stage} ran" if stage else "while writing the run folder"
        super().__init__(
            f"no space left on device {where}; free space and run the same command again "
            f"to resume ({self.folder})"
        )


def is_disk_full(err: BaseException) -> bool:
    """True when ``err`` or an exception it was raised from is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        if any(text in str(current) for text in _FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def disk_full_guard(folder: Path | str) -> Iterator[None]:
    """Turn a full-disk error raised inside the block into :class:`DiskFullError`."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if is_disk_full(err):
            raise DiskFullError(folder) from err
        raise
