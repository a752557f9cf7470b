"""Errors shared by every MMPCBench package; the ``mmpc`` command maps them to exit codes.

:class:`InputError` (exit code 2) means the user's input is wrong: a path, a file's content, a
config value. :class:`MissingWeightsError` (exit code 3) means a resource the run needs (model
weights) is not on this machine. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """The user's input is wrong: a missing or wrong-kind path, a malformed file, a bad value.

    Args:
        what: what is wrong, in one line.
        where: the path or config key it is about; appended as ``" (where)"``.
    """

    def __init__(self, what: str, where: object = None) -> None:
        self.what = " ".join(str(what).split())
        self.where = None if where is None else str(where)
        super().__init__(self.what if self.where is None else f"{self.what} ({self.where})")


class MissingWeightsError(RuntimeError):
    """A metric's backbone weights cannot be loaded here.

    The message is one line: which weights, and how to provide them (a local folder or a path in
    the config). Metrics never fall back to randomly initialised weights.
    """


class ImageReadError(InputError):
    """An image file is missing, truncated or not decodable; the message names the file."""
