"""The small interface every completion backend implements, and shared loading helpers.

Two roles:

* a :class:`Generator` turns a batch of :class:`Request` objects into raw text answers
  (``generate(requests) -> list[str]``): an MLLM writing titles (i2t) or image prompts (t2i), a
  text-only LLM writing image prompts, or the retrieval baseline;
* a :class:`Renderer` turns image prompts into images (``render(prompts, ...) -> list[Image]``):
  a diffusion pipeline or the retrieval "rendering" baseline.

Backends are plain objects configured by their ``__init__`` arguments (so LightningCLI builds them
from YAML) and load their weights in :meth:`setup`, never in ``__init__``. Weights that cannot be
found raise :class:`~mmpc.metrics.errors.MissingWeightsError` with one line saying which weights
and which config key takes a local folder.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from mmpc.metrics.errors import InputError, MissingWeightsError

if TYPE_CHECKING:
    from PIL import Image

    from mmpc.completion.catalog import Catalog

__all__ = [
    "BackendContext",
    "BackendError",
    "Generator",
    "Renderer",
    "Request",
    "load_adapter",
    "missing_weights",
    "resolve_dtype",
    "resolve_pretrained",
]

InputFormat = Literal["chat", "text_chat", "item"]
_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
}


class BackendError(InputError):
    """A backend cannot run as configured on this machine (one line: which key, what to change)."""


@dataclass(frozen=True)
class Request:
    """One item to complete.

    Attributes:
        item_id: the catalogue id.
        messages: chat messages built from the prompt template (``None`` for ``"item"`` inputs).
        image: the unmasked cover (i2t), else ``None``.
        title: the unmasked title (t2i), else ``None``.
    """

    item_id: str
    messages: list[dict[str, Any]] | None = None
    image: Image.Image | None = None
    title: str | None = None


@dataclass
class BackendContext:
    """What a backend may use when it loads.

    Attributes:
        device: the device Lightning placed this process on.
        catalog: the opened catalogue (retrieval baselines read reference items from it).
        sample_ids: the evaluated sample (all items being completed in this run, done or not).
        config_key: where this backend sits in the config, e.g. ``"model.generator"``, used in
            error messages.
    """

    device: torch.device
    catalog: Catalog | None = None
    sample_ids: frozenset[str] = field(default_factory=frozenset)
    config_key: str = "model.generator"


class Generator(ABC):
    """Writes one raw answer per request.

    Class attributes:
        input_format: ``"chat"`` (multimodal chat messages, image parts included), ``"text_chat"``
            (plain-string chat messages), or ``"item"`` (no prompt: uses image/title directly).
        answers_json: whether answers are JSON to be parsed with the prompt's key; ``False`` for
            baselines whose answer is the value itself.
    """

    input_format: ClassVar[InputFormat] = "chat"
    answers_json: ClassVar[bool] = True

    @abstractmethod
    def setup(self, ctx: BackendContext) -> None:
        """Load weights / build indexes; called once per process before the first batch."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[str]:
        """Raw answers, one per request, in order."""

    def describe(self) -> dict[str, Any]:
        """Settings that identify this backend's outputs (stored with the run)."""
        return {"class": type(self).__name__, **_public_settings(self)}

    def item_details(self) -> list[dict[str, Any]] | None:
        """Per-request details of the last :meth:`generate` call, in its order, or ``None``.

        A served backend reports latency, retries and token usage here; the module keeps them
        in each record (``"served"``) and an ``"error"`` entry, when set, as the item's error.
        """
        return None

    def teardown(self) -> None:
        """Release what :meth:`setup` acquired beyond memory (a client, a launched server)."""
        return None


class Renderer(ABC):
    """Renders one image per prompt."""

    @abstractmethod
    def setup(self, ctx: BackendContext) -> None:
        """Load weights / build indexes; called once per process before the first batch."""

    @abstractmethod
    def render(
        self, prompts: list[str], *, item_ids: list[str], seeds: list[int]
    ) -> list[Image.Image]:
        """RGB images, one per prompt; ``seeds[i]`` makes image ``i`` repeatable."""

    def describe(self) -> dict[str, Any]:
        """Settings that identify this backend's outputs (stored with the run)."""
        return {"class": type(self).__name__, **_public_settings(self)}


# Settings that change speed or where files live, never the outputs.
_NOT_IDENTITY = frozenset({"batch_size", "allow_download", "cache_dir"})


def _public_settings(obj: object) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(obj).items()
        if not k.startswith("_")
        and k not in _NOT_IDENTITY
        and isinstance(v, str | int | float | bool | dict | list | None)
    }


def load_adapter(model: Any, adapter: str | None, *, config_key: str) -> Any:
    """``model`` with the peft LoRA adapter in folder ``adapter`` applied (e.g. from ``mmpc grpo``).

    ``None`` returns ``model`` unchanged. The adapter's weights are loaded from the folder only
    (safetensors, no hub); a folder without ``adapter_config.json`` is a one-line error.
    """
    if adapter is None:
        return model
    folder = Path(os.path.expanduser(adapter))
    if not (folder / "adapter_config.json").is_file():
        raise MissingWeightsError(
            f"cannot load the LoRA adapter {adapter!r} (no adapter_config.json there): pass the "
            f"folder `mmpc grpo fit` printed with --{config_key}.init_args.adapter=/path"
        )
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), is_trainable=False)


def resolve_dtype(name: str) -> torch.dtype:
    """``"float16" | "bfloat16" | "float32"`` → the torch dtype (one-line error otherwise)."""
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}: expected one of {sorted(_DTYPES)}")
    return _DTYPES[name]


def missing_weights(what: str, model: str, config_key: str, reason: str) -> MissingWeightsError:
    """The one-line error for weights that cannot be loaded here."""
    reason = " ".join(str(reason).split())[:200]
    return MissingWeightsError(
        f"cannot load {what} weights {model!r} ({reason}); there is no model hub here: pass a "
        f"local folder with --{config_key}.init_args.model=/path (or set allow_download: true "
        "where the hub is reachable)"
    )


def resolve_pretrained(
    model: str, *, what: str, config_key: str, allow_download: bool
) -> tuple[str, dict[str, Any]]:
    """Check that ``model`` (a local folder or a hub id) can be loaded without surprises.

    Returns:
        ``(model, kwargs)`` where ``kwargs`` holds ``local_files_only`` for ``from_pretrained``.

    Raises:
        MissingWeightsError: ``model`` is neither a folder nor a hub id cached here, and
            downloads are not allowed (or ``HF_HUB_OFFLINE`` is set).
    """
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return str(path), {"local_files_only": True}
    # Hub ids look like "org/name" (dots allowed: "Qwen/Qwen2.5-VL-7B-Instruct"); anything
    # written as a path is a local folder that does not exist.
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep + os.sep in model:
        raise missing_weights(what, model, config_key, "no such folder")
    offline = not allow_download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
    if offline:
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, "config.json")
            if not isinstance(cached, str):
                cached = try_to_load_from_cache(model, "model_index.json")
        except ValueError as err:  # not a valid repo id
            raise missing_weights(what, model, config_key, str(err)) from None
        if not isinstance(cached, str):
            raise missing_weights(
                what, model, config_key, "not a local folder and not in the HF cache"
            )
    return model, {"local_files_only": offline}
