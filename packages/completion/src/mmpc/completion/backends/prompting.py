"""Prompt builders: catalogue rows → a policy's prompt tensors and its ``generate`` constraints.

A trainer that samples from a completion model (``mmpc.grpo``) must prompt it exactly as the
completer does at inference time. A :class:`PromptBuilder` owns that knowledge for one kind of
completer, so the trainer never branches on it:

* :class:`ChatPromptBuilder`: a chat LLM or MLLM (``MLLMBackend`` / ``TextLLMBackend``): the task's
  template, chat-templated by the model's processor, then the answer prefill.
* :class:`OfflineVLMPromptBuilder`: the offline I→T stand-in
  (:class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM`): the attribute probe's caption
  replaces the cover, and decoding is held to the probe's lexicon.

:func:`prompt_builder` picks the builder for a loaded model and task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch

from mmpc.completion.backends.lexicon import LexiconConstraint
from mmpc.completion.backends.offline_vlm import (
    AttributeProbe,
    Perception,
    offline_vlm_prompt,
)
from mmpc.completion.prompts import PromptTemplate, build_messages, build_text_messages

if TYPE_CHECKING:
    from mmpc.completion.catalog import Catalog

__all__ = ["ChatPromptBuilder", "OfflineVLMPromptBuilder", "PromptBuilder", "prompt_builder"]

Row = Mapping[str, Any]


class PromptBuilder(Protocol):
    """What a trainer needs to prompt a completion model like its completer does.

    Rows are catalogue items as ``mmpc.grpo.data`` yields them (``item_id``, ``title``,
    ``image``...).
    """

    def setup(self, catalog: Catalog | None) -> None:
        """Prepare with the training catalogue (e.g. fit a perception probe)."""

    def texts(self, rows: Sequence[Row]) -> list[str]:
        """The prompt text of each row (chat-templated, the answer prefill at the end)."""

    def encode(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        """Left-padded prompt tensors (``input_ids``, ``attention_mask``, pixel inputs...), CPU."""

    def generate_kwargs(
        self, rows: Sequence[Row], prompt_len: int, eos_token_id: list[int]
    ) -> dict[str, Any]:
        """``generate`` arguments that end (and constrain) the rows' answers.

        Holds ``eos_token_id`` (the ids that end a row), plus any decoding constraint.
        """


class ChatPromptBuilder:
    """The task's template through the model's chat template, as the chat completers prompt.

    Args:
        processor: the model's processor (a VLM) or tokenizer (a text-only LLM).
        template: the task's prompt template.
        task: ``"i2t"`` (the cover goes into a VLM's prompt) or ``"t2i"``.
        answer_prefix: the answer prefill appended to every prompt.
        is_vlm: whether ``processor`` takes images (multimodal chat messages).
    """

    def __init__(
        self,
        processor: Any,
        template: PromptTemplate,
        task: str,
        answer_prefix: str = "",
        is_vlm: bool = False,
    ) -> None:
        self.processor, self.template, self.task = processor, template, task
        self.answer_prefix, self.is_vlm = answer_prefix, is_vlm

    def setup(self, catalog: Catalog | None) -> None:
        """Nothing to prepare."""

    def _messages(self, row: Row) -> list[dict[str, Any]]:
        title = row["title"] if self.template.needs_title else None
        if self.is_vlm:
            image = row["image"] if self.task == "i2t" else None
            return build_messages(self.template, image=image, title=title)
        return build_text_messages(self.template, title=title)

    def texts(self, rows: Sequence[Row]) -> list[str]:
        return [
            self.processor.apply_chat_template(
                self._messages(r), add_generation_prompt=True, tokenize=False
            )
            + self.answer_prefix
            for r in rows
        ]

    def encode(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        texts = self.texts(rows)
        if self.is_vlm:
            images = [r["image"] for r in rows] if self.task == "i2t" else None
            enc = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        else:
            enc = self.processor(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        return {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}

    def generate_kwargs(
        self, rows: Sequence[Row], prompt_len: int, eos_token_id: list[int]
    ) -> dict[str, Any]:
        return {"eos_token_id": eos_token_id}


class OfflineVLMPromptBuilder:
    """The offline stand-in's prompts: the probe's caption for the cover, its words as lexicon.

    Exactly as :class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM` prompts and decodes,
    so an adapter trained on these prompts loads into that completer.

    Args:
        tokenizer: the language model's tokenizer.
        template: the i2t prompt template.
        probe: the attribute probe (fitted in :meth:`setup` on the catalogue's training items).
        answer_prefix: the answer prefill.
        config_key: the option that asked for the stand-in (named in errors).
    """

    def __init__(
        self,
        tokenizer: Any,
        template: PromptTemplate,
        probe: AttributeProbe,
        answer_prefix: str = "",
        config_key: str = "perception",
    ) -> None:
        self.tokenizer, self.template, self.probe = tokenizer, template, probe
        self.answer_prefix, self.config_key = answer_prefix, config_key
        self._seen: dict[str, Perception] = {}

    def setup(self, catalog: Catalog | None) -> None:
        if catalog is None:
            raise ValueError(f"{self.config_key}: the offline stand-in needs data.catalog")
        self.probe.fit(catalog)

    def perceive(self, rows: Sequence[Row]) -> list[Perception]:
        """The probe's reading of each row's cover (cached per item)."""
        new = {r["item_id"]: r["image"] for r in rows if r["item_id"] not in self._seen}
        if new:
            self._seen.update(zip(new, self.probe.perceive(list(new.values())), strict=True))
        return [self._seen[r["item_id"]] for r in rows]

    def texts(self, rows: Sequence[Row]) -> list[str]:
        return [
            offline_vlm_prompt(
                self.tokenizer,
                build_messages(self.template, image=r["image"]),
                p.caption,
                self.answer_prefix,
            )
            for r, p in zip(rows, self.perceive(rows), strict=True)
        ]

    def encode(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            self.texts(rows), padding=True, return_tensors="pt", add_special_tokens=False
        )
        return {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}

    def generate_kwargs(
        self, rows: Sequence[Row], prompt_len: int, eos_token_id: list[int]
    ) -> dict[str, Any]:
        lexicons = [p.words for p in self.perceive(rows)]
        return LexiconConstraint(
            self.tokenizer, lexicons, prompt_len, eos_token_id
        ).generate_kwargs()


def prompt_builder(
    processor: Any,
    template: PromptTemplate,
    task: str,
    *,
    is_vlm: bool,
    answer_prefix: str = "",
    perception: Mapping[str, Any] | None = None,
    cache_dir: str | None = None,
    model_name: str = "the model",
    config_key: str = "perception",
) -> PromptBuilder:
    """The builder for a loaded model: the stand-in's for i2t on a text-only model, else chat.

    Args:
        processor: the model's processor or tokenizer.
        template: the task's prompt template.
        task: ``"i2t"`` or ``"t2i"``.
        is_vlm: whether the model reads images.
        answer_prefix: the answer prefill.
        perception: :class:`AttributeProbe` arguments; i2t with a text-only model trains the
            offline stand-in with this probe (``{}``: its defaults).
        cache_dir: where fitted probes are cached.
        model_name: the model, named in errors.
        config_key: the option that carries ``perception``, named in errors.

    Raises:
        ValueError: i2t with a text-only model and no ``perception``.
    """
    if task == "i2t" and not is_vlm:
        if perception is None:
            raise ValueError(
                f"task 'i2t' needs a vision-language model; {model_name!r} is text-only (set "
                "perception: {} to train the offline stand-in OfflineVisionLM)"
            )
        probe = AttributeProbe(**{"cache_dir": cache_dir, **perception})
        return OfflineVLMPromptBuilder(processor, template, probe, answer_prefix, config_key)
    return ChatPromptBuilder(processor, template, task, answer_prefix, is_vlm)
