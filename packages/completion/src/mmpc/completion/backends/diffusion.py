"""Text-to-image through diffusers' ``AutoPipelineForText2Image``.

Paper settings (stabilityai/stable-diffusion-3.5-large-turbo): fp16, 4 inference steps, guidance
0.0, ``max_sequence_length`` 512, the model's default resolution. Every image gets its own
``torch.Generator`` seeded from its item id (CPU generators, so a seed gives the same initial noise
on any device), so an image does not depend on which batch it was rendered in.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import torch
from PIL import Image

from mmpc.completion.backends.base import (
    BackendContext,
    Renderer,
    missing_weights,
    resolve_dtype,
    resolve_pretrained,
)

__all__ = ["DiffusionBackend"]


class DiffusionBackend(Renderer):
    """A diffusers text-to-image pipeline.

    Args:
        model: HF id (e.g. ``stabilityai/stable-diffusion-3.5-large-turbo``) or a local folder.
        dtype: pipeline dtype (fp16 in the paper; use float32 on the CPU).
        num_inference_steps: denoising steps.
        guidance_scale: classifier-free guidance (0 disables it, as turbo models expect).
        max_sequence_length: T5 prompt length for pipelines that take it (SD3, Flux); ignored by
            pipelines without that argument.
        height: output height (``None``: the model's default).
        width: output width (``None``: the model's default).
        call_kwargs: further pipeline call arguments.
        allow_download: let ``from_pretrained`` reach the hub.
    """

    def __init__(
        self,
        model: str,
        dtype: Literal["float16", "bfloat16", "float32"] = "float16",
        num_inference_steps: int = 4,
        guidance_scale: float = 0.0,
        max_sequence_length: int | None = 512,
        height: int | None = None,
        width: int | None = None,
        call_kwargs: dict[str, Any] | None = None,
        allow_download: bool = False,
    ) -> None:
        self.model = model
        self.dtype = dtype
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.max_sequence_length = max_sequence_length
        self.height = height
        self.width = width
        self.call_kwargs = dict(call_kwargs or {})
        self.allow_download = allow_download
        resolve_dtype(dtype)
        self._pipe: Any = None

    def setup(self, ctx: BackendContext) -> None:
        from diffusers import AutoPipelineForText2Image

        if self._pipe is not None:
            return
        source, kwargs = resolve_pretrained(
            self.model,
            what="text-to-image",
            config_key=ctx.config_key,
            allow_download=self.allow_download,
        )
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                source, dtype=resolve_dtype(self.dtype), **kwargs
            )
        except OSError as err:
            raise missing_weights("text-to-image", self.model, ctx.config_key, str(err)) from None
        pipe = pipe.to(ctx.device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe

    def _call_arguments(self) -> dict[str, Any]:
        accepted = inspect.signature(self._pipe.__call__).parameters
        args: dict[str, Any] = {
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "output_type": "pil",
        }
        if self.max_sequence_length is not None and "max_sequence_length" in accepted:
            args["max_sequence_length"] = self.max_sequence_length
        if self.height is not None:
            args["height"] = self.height
        if self.width is not None:
            args["width"] = self.width
        return {**args, **self.call_kwargs}

    @torch.inference_mode()
    def render(
        self, prompts: list[str], *, item_ids: list[str], seeds: list[int]
    ) -> list[Image.Image]:
        if self._pipe is None:
            raise RuntimeError("DiffusionBackend.render called before setup()")
        if not prompts:
            return []
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        out = self._pipe(prompt=list(prompts), generator=generators, **self._call_arguments())
        return [img.convert("RGB") for img in out.images]
