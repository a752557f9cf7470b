"""Multimodal LLMs through transformers: ``AutoModelForImageTextToText`` + ``AutoProcessor``.

First-class for Qwen2.5-VL and Gemma-3 (any compatible HF id or local folder works). The model's
own chat template formats the messages (image part before the text, see
:func:`mmpc.completion.prompts.build_messages`); a batch is tokenised with left padding and decoded
from the first generated position, so batched greedy generation gives the one-at-a-time answers.

Quantisation follows the paper: bitsandbytes 4-bit NF4 with double quantisation and a per-model
compute dtype (fp16 for Qwen2.5-VL, bf16 for Gemma-3). 4-bit needs a CUDA device; on the CPU use
``quantization: none``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from mmpc.completion.backends.base import (
    BackendContext,
    BackendError,
    Generator,
    Request,
    load_adapter,
    missing_weights,
    resolve_dtype,
    resolve_pretrained,
)

__all__ = ["MLLMBackend", "decode_new_tokens"]


def decode_new_tokens(tokenizer: Any, sequences: torch.Tensor, prompt_len: int) -> list[str]:
    """Decode only the generated part of left-padded ``sequences`` (B, prompt_len + new)."""
    return tokenizer.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)


class MLLMBackend(Generator):
    """A chat MLLM that answers from an image (i2t) or from text alone (t2i prompt writing).

    Args:
        model: Hugging Face id (e.g. ``Qwen/Qwen2.5-VL-7B-Instruct``) or a local folder.
        quantization: ``"nf4"`` (bitsandbytes 4-bit NF4, double quantisation; CUDA only) or
            ``"none"``.
        compute_dtype: the 4-bit compute dtype, and the weights' dtype without quantisation.
        generation: keyword arguments for ``generate`` on top of the checkpoint's own generation
            config (e.g. ``{max_new_tokens: 128}``; Gemma-3: ``{do_sample: false}``).
        processor_kwargs: extra ``AutoProcessor.from_pretrained`` arguments (e.g. Qwen's
            ``max_pixels``).
        attn_implementation: passed to ``from_pretrained`` when set (e.g. ``"sdpa"``).
        allow_download: let ``from_pretrained`` reach the hub; off by default so that a missing
            model fails at once with one line.
        adapter: a peft LoRA adapter folder applied on top of the base (e.g. the one
            ``mmpc grpo fit`` wrote), for the before/after tables.
    """

    input_format = "chat"

    def __init__(
        self,
        model: str,
        quantization: Literal["nf4", "none"] = "nf4",
        compute_dtype: Literal["float16", "bfloat16", "float32"] = "bfloat16",
        generation: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        attn_implementation: str | None = None,
        allow_download: bool = False,
        adapter: str | None = None,
    ) -> None:
        self.model = model
        self.adapter = adapter
        self.quantization = quantization
        self.compute_dtype = compute_dtype
        self.generation = dict(generation or {})
        self.processor_kwargs = dict(processor_kwargs or {})
        self.attn_implementation = attn_implementation
        self.allow_download = allow_download
        resolve_dtype(compute_dtype)
        self._model: Any = None
        self._processor: Any = None
        self._device = torch.device("cpu")

    def setup(self, ctx: BackendContext) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor, BitsAndBytesConfig

        if self._model is not None:
            return
        source, kwargs = resolve_pretrained(
            self.model,
            what="multimodal LLM",
            config_key=ctx.config_key,
            allow_download=self.allow_download,
        )
        dtype = resolve_dtype(self.compute_dtype)
        model_kwargs: dict[str, Any] = {**kwargs, "dtype": dtype}
        if self.attn_implementation:
            model_kwargs["attn_implementation"] = self.attn_implementation
        if self.quantization == "nf4":
            if ctx.device.type != "cuda":
                raise BackendError(
                    f"{ctx.config_key}: 4-bit nf4 quantisation needs a CUDA device (got "
                    f"{ctx.device}); set quantization: none to run unquantised"
                )
            model_kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype,
            )
            model_kwargs["device_map"] = {"": ctx.device}
        try:
            processor = AutoProcessor.from_pretrained(source, **kwargs, **self.processor_kwargs)
            model = AutoModelForImageTextToText.from_pretrained(source, **model_kwargs)
        except OSError as err:
            raise missing_weights("multimodal LLM", self.model, ctx.config_key, str(err)) from None
        if self.quantization != "nf4":
            model = model.to(ctx.device)
        model = load_adapter(model, self.adapter, config_key=ctx.config_key)
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._model, self._processor, self._device = model.eval(), processor, ctx.device

    @property
    def processor(self) -> Any:
        """The loaded ``AutoProcessor`` (after :meth:`setup`)."""
        return self._processor

    @torch.inference_mode()
    def generate(self, requests: list[Request]) -> list[str]:
        if self._model is None:
            raise RuntimeError("MLLMBackend.generate called before setup()")
        conversations = [r.messages for r in requests]
        if any(c is None for c in conversations):
            raise ValueError("MLLMBackend needs chat messages for every request")
        # The processor reads the PIL images from the messages' image parts (image first).
        inputs = self._processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        inputs = inputs.to(self._device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self._model.dtype)
        prompt_len = inputs["input_ids"].shape[1]  # (B, L) left padded
        sequences = self._model.generate(
            **inputs, pad_token_id=self._processor.tokenizer.pad_token_id, **self.generation
        )
        return decode_new_tokens(self._processor.tokenizer, sequences, prompt_len)
