"""The offline stand-in's decoding constraint: a title written only with the probe's words.

:class:`LexiconConstraint` is a ``prefix_allowed_tokens_fn`` for ``generate``, used by
:class:`~mmpc.completion.backends.offline_vlm.OfflineVisionLM` and by the GRPO rollouts of the
same completer (:mod:`mmpc.completion.backends.prompting`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["LexiconConstraint"]

_PREFIX = re.compile(r"((?:[^\W\d_]+(?:, | ))*)([^\W\d_]*)(,?)")


def _lexicon_state(text: str, words: frozenset[str]) -> tuple[bool, bool]:
    """``(text is a valid start of a title, the title may end here)``.

    A title is distinct lexicon words (any case) separated by ``" "`` or ``", "``.
    """
    match = _PREFIX.fullmatch(text)
    if match is None:
        return False, False
    done = [w.lower() for w in re.findall(r"[^\W\d_]+", match.group(1))]
    if len(set(done)) < len(done) or not set(done) <= words:
        return False, False
    left = words - set(done)
    last, comma = match.group(2).lower(), match.group(3)
    if comma:  # a comma needs a word left to follow it
        return last in left and len(left) > 1, False
    return any(w.startswith(last) for w in left), last in left


class LexiconConstraint:
    """``prefix_allowed_tokens_fn`` for ``generate``: the answer uses only the probe's words.

    Each row may write the words its probe named (each at most once, any case, separated by a
    space or a comma), then close the JSON string with ``"}`` and stop; which words, their order,
    case and when to stop are the language model's choice. Every started word can be finished:
    the allowed tokens include those of each word's tails.

    Args:
        tokenizer: the language model's tokenizer.
        lexicons: the words allowed, one sequence per row of the batch.
        prompt_len: the (padded) prompt length; generated tokens follow it.
        eos_token_id: the model's end-of-sequence id(s).
    """

    CLOSE = '"}'

    def __init__(
        self,
        tokenizer: Any,
        lexicons: Sequence[Sequence[str]],
        prompt_len: int,
        eos_token_id: int | list[int] | None,
    ) -> None:
        self.tokenizer, self.prompt_len = tokenizer, prompt_len
        eos = eos_token_id if isinstance(eos_token_id, list) else [eos_token_id]
        self.eos_ids = [e for e in eos if e is not None] or [tokenizer.eos_token_id]
        self.close_ids = tokenizer(self.CLOSE, add_special_tokens=False)["input_ids"]
        self.lexicons = [frozenset(words) for words in lexicons]
        self.candidates = []
        for words in self.lexicons:
            ids: set[int] = set(tokenizer(",", add_special_tokens=False)["input_ids"])
            for word in words:
                for form in {word, word.capitalize()}:
                    # the word's own tokens, and those of each of its tails: a row that wrote
                    # the start of a word with a token taken from another word (``" L"`` of
                    # ``Loomberry`` towards ``Large``) can always finish it, never a dead end
                    tails = [form[k:] for k in range(1, len(form))]
                    for text in (form, " " + form, *tails):
                        ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
            self.candidates.append(sorted(ids))
        every = {i for ids in self.candidates for i in ids} | set(self.close_ids)
        self._text = {i: tokenizer.decode([i]) for i in every}

    def generate_kwargs(self) -> dict[str, Any]:
        """``generate`` arguments: this constraint, and a one-token ``"}`` ends a row like EOS."""
        close = self.close_ids if len(self.close_ids) == 1 else []
        return {"prefix_allowed_tokens_fn": self, "eos_token_id": self.eos_ids + close}

    def __call__(self, row: int, input_ids: torch.Tensor) -> list[int]:
        text = self.tokenizer.decode(input_ids[self.prompt_len :], skip_special_tokens=True)
        title, quote, rest = text.partition('"')
        if quote:  # closing the JSON string, then stop
            closing = quote + rest
            if closing == self.CLOSE:
                return self.eos_ids
            following = [
                i for i in self.close_ids if self.CLOSE.startswith(closing + self._text[i])
            ]
            return following or self.eos_ids
        words = self.lexicons[row]
        allowed = [
            i for i in self.candidates[row] if _lexicon_state(title + self._text[i], words)[0]
        ]
        if _lexicon_state(title, words)[1] or not allowed:
            allowed.append(self.close_ids[0])
        return allowed
