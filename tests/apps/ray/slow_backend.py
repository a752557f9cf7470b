"""A test-only completer: the colour-histogram retrieval baseline, slowed down per batch so a
test can kill the worker of a completion shard while it is half done."""

from __future__ import annotations

import time

from mmpc.completion.backends import RetrievalTitleBaseline
from mmpc.completion.backends.base import Request


class SlowRetrieval(RetrievalTitleBaseline):
    """:class:`RetrievalTitleBaseline` that sleeps ``delay`` seconds before each batch."""

    def __init__(self, delay: float = 0.5, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def generate(self, requests: list[Request]) -> list[str]:
        time.sleep(self.delay)
        return super().generate(requests)


class BrokenRetrieval(RetrievalTitleBaseline):
    """A completer whose setup always fails, for the one-line failure report."""

    def setup(self, ctx: object) -> None:
        raise RuntimeError("BrokenRetrieval: broken on purpose")
