"""An LLM-free T→I BASELINE writer: the image prompt is the product's own title.

Paired with :class:`~mmpc.completion.backends.retrieval.RetrievalRenderer` it completes a missing
cover with the cover of the reference item whose title is nearest (MiniLM cosine) to the masked
item's title: what a T→I completer has to beat to be worth its language model.
"""

from __future__ import annotations

from mmpc.completion.backends.base import BackendContext, Generator, Request

__all__ = ["TitlePromptBaseline"]


class TitlePromptBaseline(Generator):
    """BASELINE t2i writer: answers every request with its title, verbatim, as the prompt.

    No prompt template and no model: the answer is the value itself (``answers_json = False``),
    so it never fails to parse. I→T requests carry no title and are refused.
    """

    input_format = "item"
    answers_json = False

    def setup(self, ctx: BackendContext) -> None:
        """Nothing to load."""

    def generate(self, requests: list[Request]) -> list[str]:
        missing = [r.item_id for r in requests if not r.title]
        if missing:
            raise ValueError(
                f"TitlePromptBaseline writes T→I prompts from the title; item {missing[0]!r} "
                "has none (it cannot do I→T)"
            )
        return [str(r.title) for r in requests]
