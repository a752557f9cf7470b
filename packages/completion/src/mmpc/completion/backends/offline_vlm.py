"""OFFLINE STAND-IN for a multimodal LLM (i2t): an attribute probe that reads the cover, and
SmolLM2-135M-Instruct that writes the title from what the probe saw.

No vision-language model ships on a reachable registry (``OFFLINE.md``), so the image reaches the
language model as words, the way "Socratic" caption-then-LLM pipelines do:

1. **Perception** (:class:`AttributeProbe`): one linear softmax head per attribute (product type,
   colour, pattern, size, brand) on frozen offline image features: the pretrained ST-LPIPS AlexNet
   trunk pooled over a 2×2 grid (:class:`~mmpc.completion.backends.retrieval.STLPIPSAlexNetEncoder`)
   concatenated with an RGB histogram. It is fitted on the catalogue's *training* items only,
   never on the CQBench or GRPO samples, with L-BFGS from zero weights (deterministic), and cached
   in ``<cache_dir>/offline-vlm/probe-<sha256[:16]>.safetensors``, keyed by the settings, the
   training ids, their attribute values and the bytes of their covers (written aside, then moved
   into place).
2. **Prompt** (:func:`offline_vlm_prompt`): the same chat messages as the MLLMs
   (:func:`~mmpc.completion.prompts.build_messages`: system turn, user turn with the image part
   and the instruction and example), the image part replaced by the probe's words placed after
   the instruction (a prefix shared by every item, see :func:`perceived_messages`), then the
   language model's chat template and the answer prefill. :class:`OfflineVisionLM` and the GRPO
   module (``mmpc.grpo``) both build their prompts with this one function, so an adapter trained
   by ``mmpc grpo fit`` sees the completer's prompts exactly.
3. **Language model**: SmolLM2-135M-Instruct (the packaged GGUF, as
   :class:`~mmpc.completion.backends.textllm.TextLLMBackend`), optionally with a LoRA adapter;
   the title is decoded by the model, never copied from another item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F

from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.lexicon import LexiconConstraint
from mmpc.completion.backends.textllm import TextLLMBackend, default_cache_dir
from mmpc.completion.catalog.vocab import PATTERN_WORDS, TYPES
from mmpc.metrics.files import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from PIL import Image

    from mmpc.completion.catalog import Catalog

__all__ = [
    "STAND_IN",
    "AttributeProbe",
    "OfflineVisionLM",
    "offline_vlm_prompt",
    "perceived_messages",
    "probe_training_ids",
]

STAND_IN = (
    "offline stand-in for a multimodal LLM: ST-LPIPS AlexNet attribute probe + "
    "SmolLM2-135M-Instruct"
)
ATTRIBUTES = ("product_type", "color", "pattern", "size", "brand")
_NOUNS = {name: nouns[0] for cat in TYPES.values() for name, (nouns, _) in cat.items()}
_LABELS = {
    "product_type": "product",
    "color": "colour",
    "pattern": "pattern",
    "size": "size",
    "brand": "brand label",
    "material": "material",
    "secondary_color": "trim colour",
}


def probe_training_ids(catalog: Catalog) -> list[str]:
    """The items the probe may learn from: every item outside the CQBench and GRPO samples."""
    held_out = set(catalog.sample("cqbench")) | set(catalog.sample("grpo"))
    return sorted(i for i in catalog.items.index if i not in held_out)


def _word(attribute: str, value: str) -> str:
    if attribute == "product_type":
        return _NOUNS.get(value, value.replace("_", " "))
    if attribute == "pattern":
        return PATTERN_WORDS.get(value, [value])[0]
    return value


class AttributeProbe:
    """Names the attributes a cover shows: linear heads on frozen offline image features.

    Args:
        attributes: the catalogue's attribute columns to predict (and to name in the prompt).
        image_size: side of the square AlexNet input.
        grid: AlexNet features pooled over ``grid`` × ``grid`` cells.
        weight_decay: L2 penalty on the heads' weights (features are standardised).
        max_iter: L-BFGS iterations per head.
        batch_size: covers per encoder call.
        cache_dir: where fitted probes are cached (default ``$MMPC_CACHE`` or ``~/.cache/mmpc``).
    """

    def __init__(
        self,
        attributes: Sequence[str] = ATTRIBUTES,
        image_size: int = 128,
        grid: int = 2,
        weight_decay: float = 1e-2,
        max_iter: int = 100,
        batch_size: int = 64,
        cache_dir: str | None = None,
    ) -> None:
        self.attributes = list(attributes)
        self.image_size, self.grid = image_size, grid
        self.weight_decay, self.max_iter = weight_decay, max_iter
        self.batch_size, self.cache_dir = batch_size, cache_dir
        self.vocab: dict[str, list[str]] = {}
        self.fitted_on: list[str] = []
        self._alexnet: Any = None
        self._state: dict[str, torch.Tensor] = {}

    def settings(self) -> dict[str, Any]:
        """What determines the fitted weights besides the training data."""
        return {
            "attributes": self.attributes,
            "image_size": self.image_size,
            "grid": self.grid,
            "weight_decay": self.weight_decay,
            "max_iter": self.max_iter,
            "features": "stlpips-alexnet+color-histogram",
            "version": 1,
        }

    # ------------------------------------------------------------------------------ features
    def features(self, images: list[Image.Image]) -> torch.Tensor:
        """``(N, D)`` frozen features: AlexNet grid-pooled (4608-d at grid 2) + histogram (512)."""
        from mmpc.completion.backends.retrieval import ColorHistogramEncoder, STLPIPSAlexNetEncoder

        if self._alexnet is None:
            self._alexnet = STLPIPSAlexNetEncoder(torch.device("cpu"), self.image_size, self.grid)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            chunks.append(
                torch.cat([self._alexnet.encode(batch), ColorHistogramEncoder().encode(batch)], 1)
            )
        return torch.cat(chunks)

    # ------------------------------------------------------------------------------ fitting
    def _digest(self, catalog: Catalog, ids: list[str]) -> str:
        missing = sorted(set(self.attributes) - set(catalog.items.columns))
        if missing:
            raise ValueError(
                f"{catalog.root}: items.parquet has no attribute columns {missing}; the offline "
                "stand-in's probe needs a catalogue with attribute columns (the synthetic one)"
            )
        digest = hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode())
        table = catalog.items.loc[ids, self.attributes]
        digest.update(table.to_json(orient="split").encode())
        for item_id in ids:
            digest.update(item_id.encode())
            digest.update(catalog.image_path(item_id).read_bytes())
        return digest.hexdigest()

    def fit(self, catalog: Catalog) -> AttributeProbe:
        """Fit on :func:`probe_training_ids` of ``catalog`` (or load the cached fit)."""
        from safetensors.torch import load_file

        ids = probe_training_ids(catalog)
        if not ids:
            raise ValueError(f"{catalog.root}: no training items outside the CQBench/GRPO samples")
        cache = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        path = cache / "offline-vlm" / f"probe-{self._digest(catalog, ids)[:16]}.safetensors"
        if path.is_file():
            self._state = load_file(path)
            self.vocab = json.loads(path.with_suffix(".json").read_text())["vocab"]
        else:
            images = [catalog.load_image(i) for i in ids]
            labels = {a: [str(v) for v in catalog.items.loc[ids, a]] for a in self.attributes}
            self.fit_arrays(self.features(images), labels)
            self._save(path)
        self.fitted_on = ids
        return self

    def fit_arrays(self, features: torch.Tensor, labels: dict[str, list[str]]) -> None:
        """Fit the heads on ``features`` ``(N, D)`` and string ``labels`` per attribute.

        Runs with gradients even inside Lightning's ``predict`` (inference mode).
        """
        with torch.inference_mode(False), torch.enable_grad():
            self._fit_heads(features.clone(), labels)

    def _fit_heads(self, features: torch.Tensor, labels: dict[str, list[str]]) -> None:
        mean, std = features.mean(0), features.std(0) + 1e-6
        x = (features - mean) / std  # (N, D)
        self._state = {"mean": mean, "std": std}
        self.vocab = {}
        for attribute in self.attributes:
            vocab = sorted(set(labels[attribute]))
            y = torch.tensor([vocab.index(v) for v in labels[attribute]])  # (N,)
            head = torch.nn.Linear(x.shape[1], len(vocab))
            torch.nn.init.zeros_(head.weight)
            torch.nn.init.zeros_(head.bias)
            opt = torch.optim.LBFGS(
                head.parameters(), max_iter=self.max_iter, line_search_fn="strong_wolfe"
            )

            def closure(head: torch.nn.Linear = head, opt: Any = opt, y: torch.Tensor = y) -> Any:
                opt.zero_grad()
                loss = F.cross_entropy(head(x), y) + self.weight_decay * head.weight.pow(2).sum()
                loss.backward()
                return loss

            opt.step(closure)
            self._state[f"{attribute}.weight"] = head.weight.detach().clone()
            self._state[f"{attribute}.bias"] = head.bias.detach().clone()
            self.vocab[attribute] = vocab

    def _save(self, path: Path) -> None:
        from safetensors.torch import save_file

        atomic_write_text(path.with_suffix(".json"), json.dumps({"vocab": self.vocab}))
        # The weights last: their presence means the fit is complete.
        with atomic_path(path) as tmp:
            save_file(self._state, str(tmp))

    # ------------------------------------------------------------------------------ reading
    def probabilities(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        """Per attribute, ``(N, V)`` softmax probabilities over ``vocab[attribute]``."""
        if not self.vocab:
            raise RuntimeError("AttributeProbe used before fit()")
        x = (self.features(images) - self._state["mean"]) / self._state["std"]  # (N, D)
        return {
            a: (x @ self._state[f"{a}.weight"].T + self._state[f"{a}.bias"]).softmax(1)
            for a in self.attributes
        }

    def predict(self, images: list[Image.Image]) -> list[dict[str, str]]:
        """The most likely value of each attribute, per image."""
        out: list[dict[str, str]] = [{} for _ in images]
        for attribute, probs in self.probabilities(images).items():
            for row, k in zip(out, probs.argmax(1).tolist(), strict=True):
                row[attribute] = self.vocab[attribute][k]
        return out

    def perceive(self, images: list[Image.Image]) -> list[Perception]:
        """What the probe sees in each image: the caption text and its words."""
        out = []
        for attrs in self.predict(images):
            named = {a: _word(a, v) for a, v in attrs.items()}
            caption = "Image: " + "; ".join(f"{_LABELS.get(a, a)}: {w}" for a, w in named.items())
            words = tuple(dict.fromkeys(w.lower() for p in named.values() for w in p.split()))
            out.append(Perception(caption + ".", words))
        return out


@dataclass(frozen=True)
class Perception:
    """What the probe read from one image.

    Attributes:
        caption: the text that stands in for the image in the prompt.
        words: the distinct lower-case words the caption names (the decoding lexicon).
    """

    caption: str
    words: tuple[str, ...]


def perceived_messages(messages: list[dict[str, Any]], caption: str) -> list[dict[str, str]]:
    """Multimodal chat messages as plain strings, the image parts replaced by one ``caption``.

    The caption goes AFTER the turn's text (the MLLMs see the image before it): the system turn,
    the instruction and the example are then the same tokens for every item, a prefix that
    :class:`OfflineVisionLM` and the GRPO module compute once per batch, so each item's own
    prompt is its ~20 caption tokens instead of ~150 (the demo's stand-in completes 180 items
    about twice as fast, at the same TF-IDF, see ``docs/completion.md``).
    """
    out = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            texts = [part["text"] for part in content if part["type"] != "image"]
            seen = any(part["type"] == "image" for part in content)
            content = "\n\n".join(texts + ([caption] if seen else []))
        out.append({"role": message["role"], "content": content})
    return out


def offline_vlm_prompt(
    tokenizer: Any, messages: list[dict[str, Any]], caption: str, answer_prefix: str = ""
) -> str:
    """The language model's prompt text: messages perceived, chat-templated, then the prefill.

    Used by :class:`OfflineVisionLM` and by ``mmpc.grpo`` alike.
    """
    return (
        tokenizer.apply_chat_template(
            perceived_messages(messages, caption), tokenize=False, add_generation_prompt=True
        )
        + answer_prefix
    )


class OfflineVisionLM(TextLLMBackend):
    """OFFLINE STAND-IN i2t completer: attribute probe + SmolLM2-135M-Instruct (module docstring).

    Args:
        model: the language model (default: the packaged SmolLM2-135M-Instruct GGUF); a folder,
            a hub id or a ``.gguf`` file, as for :class:`TextLLMBackend`.
        dtype: weights dtype.
        generation: keyword arguments for ``generate`` (e.g. ``{max_new_tokens: 32}``).
        cache_dir: where GGUF conversions and fitted probes live.
        allow_download: let ``from_pretrained`` reach the hub.
        adapter: a peft LoRA adapter folder (e.g. from ``mmpc grpo fit``).
        answer_prefix: the answer prefill, e.g. ``'{"title": "'``; use the adapter's.
        perception: :class:`AttributeProbe` arguments (the GRPO config must use the same).
    """

    input_format = "chat"

    def __init__(
        self,
        model: str | None = None,
        dtype: Literal["float16", "bfloat16", "float32"] = "float32",
        generation: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        allow_download: bool = False,
        adapter: str | None = None,
        answer_prefix: str = "",
        perception: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            model, dtype, generation, cache_dir, allow_download, adapter, answer_prefix
        )
        self.perception = dict(perception or {})
        self.stand_in = STAND_IN
        self._probe = AttributeProbe(**{"cache_dir": cache_dir, **self.perception})

    @property
    def probe(self) -> AttributeProbe:
        """The perception part (fitted in :meth:`setup`)."""
        return self._probe

    def setup(self, ctx: BackendContext) -> None:
        if ctx.catalog is None:
            raise ValueError(f"{ctx.config_key}: the offline stand-in needs the catalogue")
        if not self._probe.vocab:
            self._probe.fit(ctx.catalog)
        super().setup(ctx)

    @torch.inference_mode()
    def generate(self, requests: list[Request]) -> list[str]:
        if self._model is None:
            raise RuntimeError("OfflineVisionLM.generate called before setup()")
        if any(r.messages is None or r.image is None for r in requests):
            raise ValueError("OfflineVisionLM needs chat messages and the cover of every request")
        seen = self._probe.perceive([r.image for r in requests])
        texts = [
            offline_vlm_prompt(self._tokenizer, r.messages, p.caption, self.answer_prefix)
            for r, p in zip(requests, seen, strict=True)
        ]
        return self._complete(
            texts,
            lambda prompt_len: LexiconConstraint(
                self._tokenizer,
                [p.words for p in seen],
                prompt_len,
                self._model.generation_config.eos_token_id,
            ).generate_kwargs(),
        )
