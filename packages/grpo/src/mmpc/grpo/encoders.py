"""Image encoders for the t2i image-similarity reward: images → L2-normalised ``(N, D)`` rows.

* :class:`CLIPImageEncoder`: CLIP image embeddings (the paper's choice, ViT-B/32), loaded with
  ``transformers`` from a local folder or a hub id. Nothing reachable here ships CLIP weights: a
  folder that does not load raises :class:`MissingWeightsError` (never random weights).
* :class:`STLPIPSImageEncoder`: the offline stand-in. The anti-aliased AlexNet of the
  ``stlpips-pytorch`` package (ImageNet-trained weights shipped in the wheel), each of its five
  ReLU stages global-average-pooled and L2-normalised, concatenated (64+192+384+256+256 = 1152-d)
  and normalised again. It is labelled ``"ST-LPIPS AlexNet features"`` wherever it stands in for
  CLIP: its similarities are not CLIP similarities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mmpc.metrics.backbones import load_stlpips_trunk
from mmpc.metrics.errors import MissingWeightsError
from mmpc.metrics.functional.image_io import to_rgb

__all__ = ["CLIPImageEncoder", "STLPIPSImageEncoder", "build_image_encoder"]


def _to_rgb(image: Any) -> Any:
    """A PIL image in 8-bit RGB as the image metrics read it (:func:`to_rgb`: transparency on
    white); anything else (an ``(H, W, 3)`` uint8 array) as it is."""
    return to_rgb(image) if isinstance(image, Image.Image) else image


class CLIPImageEncoder:
    """CLIP image features ``normalize(get_image_features(pixel_values))``.

    Args:
        model: a local folder or hub id of a ``CLIPModel`` checkpoint with its processor.
        device: torch device string.
    """

    def __init__(self, model: str | Path, device: str = "cpu") -> None:
        from transformers import CLIPImageProcessor, CLIPModel

        try:
            self.model = CLIPModel.from_pretrained(str(model)).to(device).eval()
            self.processor = CLIPImageProcessor.from_pretrained(str(model))
        except (OSError, ValueError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise MissingWeightsError(
                f"CLIP weights not loadable from {model!r} (give a local CLIP folder): {first}"
            ) from err
        self.device = device
        self.label = f"CLIP ({Path(str(model)).name})"

    @torch.no_grad()
    def __call__(self, images: list[Any]) -> torch.Tensor:
        pixels = self.processor(images=[_to_rgb(i) for i in images], return_tensors="pt")
        feats = self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device))
        if not isinstance(feats, torch.Tensor):  # transformers 5 may return a model output
            feats = feats.pooler_output
        return F.normalize(feats.float(), dim=-1)  # (N, D)


class STLPIPSImageEncoder:
    """Pooled anti-aliased AlexNet features of ST-LPIPS (offline image encoder).

    Images are resized to ``size × size`` (bilinear), scaled to ``[-1, 1]``, passed through
    ST-LPIPS's scaling layer and AlexNet; each stage's ``(C_l, H_l, W_l)`` map is averaged over
    space and L2-normalised; the concatenation is L2-normalised.

    Args:
        size: input side in pixels.
        device: torch device string.
    """

    label = "ST-LPIPS AlexNet features (offline stand-in for CLIP)"

    def __init__(self, size: int = 224, device: str = "cpu") -> None:
        self.trunk = load_stlpips_trunk().to(device)
        self.size, self.device = size, device

    def _tensor(self, images: list[Any]) -> torch.Tensor:
        arrays = []
        for image in images:
            rgb = np.asarray(_to_rgb(image), dtype=np.float32) / 255.0  # (H, W, 3)
            t = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
            arrays.append(F.interpolate(t, size=(self.size, self.size), mode="bilinear"))
        return torch.cat(arrays).to(self.device) * 2 - 1  # (N, 3, S, S)

    @torch.no_grad()
    def __call__(self, images: list[Any]) -> torch.Tensor:
        stages = self.trunk(self._tensor(images))
        pooled = [F.normalize(s.mean(dim=(2, 3)), dim=-1) for s in stages]  # each (N, C_l)
        return F.normalize(torch.cat(pooled, dim=-1), dim=-1)  # (N, 1152)


def build_image_encoder(name: str, device: str = "cpu") -> CLIPImageEncoder | STLPIPSImageEncoder:
    """``"stlpips"`` → :class:`STLPIPSImageEncoder`; anything else is a CLIP folder or hub id."""
    if name == "stlpips":
        return STLPIPSImageEncoder(device=device)
    return CLIPImageEncoder(name, device=device)
