"""GRPO rewards as plain callables ``f(completions, **columns) -> list[float]``.

``completions`` are the decoded answers (one per sampled completion, prompt-major: the G
completions of a prompt are consecutive); every column (``item_id``, ``title``, ``image``, ...) is a
list aligned with ``completions`` (the prompt's value repeated G times), as in TRL.

The paper's reward (PROTOCOL.md, GRPO) is ``json_format + scale × similarity``:

* :class:`JsonFormatReward`: 1 when :func:`mmpc.completion.parsing.parse_answer` finds a non-empty
  value under the key, else 0;
* :class:`TitleSimilarityReward` (i2t): ``scale · cos(e(generated title), e(true title))`` with
  ``e`` the all-MiniLM-L6-v2 sentence embedding, ``scale = 2``;
* :class:`ImageSimilarityReward` (t2i): ``scale · mean_k cos(f(render_k(prompt)), f(true cover))``
  over ``renders = 4`` renders whose seeds depend only on the item and ``k`` (so the G completions
  of one prompt are rendered with the same seeds), ``f`` an image encoder
  (:mod:`mmpc.grpo.encoders`), ``scale = 4``.

An answer that does not parse gets similarity 0 (there is no title or prompt to compare).
:class:`RewardCombiner` sums weighted components and keeps each component for logging.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mmpc.completion.backends.base import BackendContext, Renderer
from mmpc.completion.parsing import parse_answer
from mmpc.metrics.backbones import minilm_path
from mmpc.metrics.errors import MissingWeightsError

__all__ = [
    "ImageSimilarityReward",
    "JsonFormatReward",
    "Reward",
    "RewardCombiner",
    "RewardFn",
    "TitleSimilarityReward",
    "render_seed",
]

RewardFn = Callable[..., list[float]]
TextEncoder = Callable[[list[str]], torch.Tensor]


def render_seed(item_id: str, k: int, base_seed: int = 0) -> int:
    """Seed of the ``k``-th render for ``item_id``: stable across processes and group members."""
    digest = hashlib.sha256(f"{base_seed}:{item_id}:{k}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _values(completions: Sequence[str], key: str) -> list[str | None]:
    return [parse_answer(c, key).value for c in completions]


class Reward(ABC):
    """Base of the configurable rewards: ``reward(completions, **columns) -> list[float]``.

    Any plain function with that signature works wherever a reward is expected; subclasses of
    this class can also be named in YAML (``class_path`` + ``init_args``).
    """

    def setup(self, ctx: BackendContext) -> None:  # noqa: B027 (optional hook)
        """Load what the reward needs (called once by ``GRPOModule.setup``); default nothing."""

    @abstractmethod
    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        """One reward per completion; ``columns`` hold the batch's other fields."""


class JsonFormatReward(Reward):
    """1.0 when the answer parses with ``key`` holding a non-empty string, else 0.0."""

    def __init__(self, key: str = "title") -> None:
        self.key = key

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        return [0.0 if v is None else 1.0 for v in _values(completions, self.key)]


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings of a BERT-style encoder folder.

    This is the sentence-transformers recipe of all-MiniLM-L6-v2 (mean over non-padding tokens,
    then L2 normalisation), run with ``transformers`` directly so any compatible folder works.
    """

    def __init__(self, path: str | Path | None = None, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = Path(path) if path is not None else minilm_path()
        if not (folder / "config.json").is_file():
            raise MissingWeightsError(
                f"sentence encoder weights missing: no config.json in {folder}"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=256, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (B, L, H)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return F.normalize(pooled.float(), dim=-1)


class TitleSimilarityReward(Reward):
    """``scale · cos(e(generated), e(true))`` for i2t; 0 for answers that do not parse.

    Args:
        model: sentence-encoder folder (default the packaged all-MiniLM-L6-v2), loaded on the
            first call.
        scale: the paper's 2.
        key: the JSON key of the answer.
        column: the column with the true titles.
        device: where the encoder runs.
        encoder: an already built texts → ``(N, D)`` encoder (overrides ``model``).
    """

    def __init__(
        self,
        model: str | None = None,
        scale: float = 2.0,
        key: str = "title",
        column: str = "title",
        device: str = "cpu",
        encoder: TextEncoder | None = None,
    ) -> None:
        self.model, self.device, self._encoder = model, device, encoder
        self.scale, self.key, self.column = scale, key, column

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = SentenceEmbedder(self.model, device=self.device)
        return self._encoder

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        truth = columns.get(self.column)
        if truth is None or len(truth) != len(completions):
            raise ValueError(f"title_similarity needs a column {self.column!r} per completion")
        values = _values(completions, self.key)
        ok = [i for i, v in enumerate(values) if v is not None]
        out = [0.0] * len(completions)
        if ok:
            gen = self.encoder([values[i] for i in ok])  # (n, D)
            ref = self.encoder([str(truth[i]) for i in ok])  # (n, D)
            cos = F.cosine_similarity(gen, ref, dim=-1)  # (n,)
            for j, i in enumerate(ok):
                out[i] = self.scale * float(cos[j])
        return out


class ImageSimilarityReward(Reward):
    """``scale · mean_k cos(f(render(prompt, seed_k)), f(true image))`` for t2i.

    Args:
        renderer: a :class:`mmpc.completion.backends.base.Renderer` (the diffusion backend, or
            the retrieval renderer baseline), set up by :meth:`setup`.
        encoder: images → ``(N, D)`` embeddings, or a name for
            :func:`mmpc.grpo.encoders.build_image_encoder` (``"stlpips"`` or a CLIP folder / id),
            built on the first call; ``encoder.label`` names it in logs and reports.
        scale: the paper's 4.
        renders: renders per completion (the paper's 4), seeds shared across the group.
        key: the JSON key of the answer.
        image_column: the column with the true cover images (PIL images).
        id_column: the column with item ids (seeds derive from them).
        base_seed: mixed into every render seed.
    """

    def __init__(
        self,
        renderer: Renderer,
        encoder: str | Callable[[list[Any]], torch.Tensor] = "stlpips",
        scale: float = 4.0,
        renders: int = 4,
        key: str = "prompt",
        image_column: str = "image",
        id_column: str = "item_id",
        base_seed: int = 0,
        device: str = "cpu",
    ) -> None:
        if renders < 1:
            raise ValueError(f"renders must be >= 1, got {renders}")
        self.renderer, self._encoder, self.device = renderer, encoder, device
        self.scale, self.renders, self.key = scale, renders, key
        self.image_column, self.id_column, self.base_seed = image_column, id_column, base_seed
        self._truth: dict[str, torch.Tensor] = {}

    def setup(self, ctx: BackendContext) -> None:
        """Set up the renderer (weights, reference index) and the image encoder."""
        self.renderer.setup(replace(ctx, config_key=f"{ctx.config_key}.init_args.renderer"))
        if isinstance(self._encoder, str):
            self._encoder = self.encoder

    @property
    def encoder(self) -> Callable[[list[Any]], torch.Tensor]:
        if isinstance(self._encoder, str):
            from mmpc.grpo.encoders import build_image_encoder

            self._encoder = build_image_encoder(self._encoder, device=self.device)
        return self._encoder

    @property
    def label(self) -> str:
        """What measures image similarity (e.g. "CLIP (...)" or "ST-LPIPS AlexNet features")."""
        return getattr(self.encoder, "label", type(self.encoder).__name__)

    def _true_embedding(self, item_id: str, image: Any) -> torch.Tensor:
        if item_id not in self._truth:
            self._truth[item_id] = self.encoder([image])[0]  # (D,)
        return self._truth[item_id]

    def __call__(self, completions: Sequence[str], **columns: Any) -> list[float]:
        images, ids = columns.get(self.image_column), columns.get(self.id_column)
        for name, col in ((self.image_column, images), (self.id_column, ids)):
            if col is None or len(col) != len(completions):
                raise ValueError(f"image_similarity needs a column {name!r} per completion")
        values = _values(completions, self.key)
        ok = [i for i, v in enumerate(values) if v is not None]
        out = [0.0] * len(completions)
        if not ok:
            return out
        prompts = [values[i] for i in ok for _ in range(self.renders)]
        seeds = [
            render_seed(str(ids[i]), k, self.base_seed) for i in ok for k in range(self.renders)
        ]
        item_ids = [str(ids[i]) for i in ok for _ in range(self.renders)]
        rendered = self.renderer.render(prompts, item_ids=item_ids, seeds=seeds)
        if len(rendered) != len(prompts):
            raise ValueError(f"renderer returned {len(rendered)} images for {len(prompts)} prompts")
        emb = self.encoder(rendered).view(len(ok), self.renders, -1)  # (n, K, D)
        truth = torch.stack([self._true_embedding(str(ids[i]), images[i]) for i in ok])  # (n, D)
        cos = F.cosine_similarity(emb, truth.unsqueeze(1).to(emb.dtype), dim=-1)  # (n, K)
        for j, i in enumerate(ok):
            out[i] = self.scale * float(cos[j].mean())
        return out


class RewardCombiner:
    """Weighted sum of named rewards, keeping each component.

    ``total_i = Σ_c w_c · r_c(completions, **columns)_i`` (weights default to 1; the paper's
    scales live inside the similarity rewards).

    Args:
        rewards: name → reward callable.
        weights: name → weight (missing names weigh 1).
    """

    def __init__(
        self, rewards: Mapping[str, RewardFn], weights: Mapping[str, float] | None = None
    ) -> None:
        if not rewards:
            raise ValueError("RewardCombiner needs at least one reward")
        unknown = sorted(set(weights or {}) - set(rewards))
        if unknown:
            raise ValueError(f"weights for unknown rewards {unknown} (rewards: {sorted(rewards)})")
        self.rewards = dict(rewards)
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in rewards}

    def __call__(
        self, completions: Sequence[str], **columns: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns ``(total (N,), {name: unweighted component (N,)})``."""
        components: dict[str, torch.Tensor] = {}
        for name, fn in self.rewards.items():
            values = fn(list(completions), **columns)
            if len(values) != len(completions):
                raise ValueError(
                    f"reward {name!r} returned {len(values)} values for {len(completions)} answers"
                )
            components[name] = torch.tensor(values, dtype=torch.float32)
        total = sum(self.weights[n] * v for n, v in components.items())
        return total, components  # type: ignore[return-value]
