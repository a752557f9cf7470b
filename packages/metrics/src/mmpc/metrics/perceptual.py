"""Network-based image metrics as torchmetrics classes: ``LPIPS`` and ``CLIPImageSimilarity``.

The networks are loaded once at construction (offline only, see :mod:`mmpc.metrics.backbones`)
or injected, kept in eval mode, and moved with the metric (``metric.to(device)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from mmpc.metrics.backbones import LPIPSVariant, load_clip, load_lpips_net
from mmpc.metrics.functional.image import Reduction
from mmpc.metrics.functional.perceptual import (
    LPIPS_MIN_SIDE,
    LPIPSNet,
    _clip_update,
    _lpips_update,
    clip_tensor_transform,
)
from mmpc.metrics.image import PerItemImageMetric


class _FrozenNetMetric(PerItemImageMetric):
    """A per-item metric around a network that must stay in eval mode (no dropout)."""

    net: nn.Module | Callable[..., Any]

    def train(self, mode: bool = True) -> _FrozenNetMetric:
        super().train(mode)
        if isinstance(self.net, nn.Module):
            self.net.eval()
        return self


class LPIPS(_FrozenNetMetric):
    """Learned perceptual image patch similarity per pair (lower is more similar).

    ``LPIPS(x, y) = sum_l mean_{h,w} || w_l ⊙ (f̂_l(x) - f̂_l(y)) ||²`` on the AlexNet
    activations (``lpips.LPIPS(net="alex")``), inputs scaled to ``[-1, 1]``, RGB.

    ``net="st-lpips"`` uses the shift-tolerant AlexNet LPIPS of ``stlpips-pytorch`` instead
    (shipped weights, fully offline); its values are not LPIPS values, so :attr:`label` is
    ``"ST-LPIPS"`` and reports must show that label.

    Pairs whose smaller side is under 64 px are skipped, as the protocol says: they appear as
    ``NaN`` with ``reduction="none"``, are left out of the mean, and are counted in
    :attr:`skipped` (a state, summed across processes).

    Args:
        net: ``"alex"`` (default), ``"st-lpips"``, or a network ``net(x, y) -> (N, 1, 1, 1)`` on
            ``[-1, 1]`` inputs (e.g. for tests).
        backbone_path: local torchvision AlexNet file for ``net="alex"`` (default: torch hub
            cache, ``~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth``).
        label: report label for an injected network only (default ``"LPIPS"``).
        min_side: smallest side, in px, that is scored.
        reduction: ``"mean"`` or ``"none"``.

    Raises:
        MissingWeightsError: at construction, when the weights are not on disk.
    """

    is_differentiable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        net: LPIPSVariant | LPIPSNet = "alex",
        backbone_path: str | os.PathLike[str] | None = None,
        label: str | None = None,
        min_side: int = LPIPS_MIN_SIDE,
        reduction: Reduction = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, **kwargs)
        if isinstance(net, str):
            if label is not None:
                raise ValueError(
                    "label is only for injected networks; 'alex' and 'st-lpips' fix it"
                )
            self.net = load_lpips_net(net, backbone_path)
            self.label = "ST-LPIPS" if net == "st-lpips" else "LPIPS"
        else:
            self.net = net
            self.label = label or "LPIPS"
        if isinstance(self.net, nn.Module):
            self.net.requires_grad_(False).eval()
        self.min_side = min_side

    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        return _lpips_update(preds, target, self.net, self.min_side)


class CLIPImageSimilarity(_FrozenNetMetric):
    """Cosine similarity of the CLIP image embeddings of each pair (higher is more similar).

    ``cos(E(x), E(y))`` with ``E = model.encode_image`` after open_clip's eval preprocessing
    (resize to 224 bicubic on the shorter side, centre crop, CLIP mean/std), run batched in torch
    on the ``[0, 1]`` inputs. The default is OpenAI's CLIP ViT-B/32 through open_clip
    (``"ViT-B-32"``, ``pretrained="openai"``), read from the Hugging Face cache; nothing is
    downloaded.

    Args:
        model: ``"ViT-B-32"`` (or another open_clip architecture, with ``pretrained`` a tag or a
            checkpoint file), ``"hf-hub:org/repo"``, ``"local-dir:/folder"``, or a callable
            returning ``(model, preprocess)``.
        pretrained: open_clip tag or checkpoint path for an architecture name.
        cache_dir: Hugging Face cache folder to look in.
        reduction: ``"mean"`` or ``"none"``.

    Raises:
        MissingWeightsError: at construction, when the weights are not on disk.
    """

    is_differentiable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True
    label = "CLIP similarity"

    def __init__(
        self,
        model: str | Callable[[], tuple[nn.Module, Callable[[Any], Any]]] = "ViT-B-32",
        pretrained: str | None = "openai",
        cache_dir: str | None = None,
        reduction: Reduction = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, **kwargs)
        clip_model, preprocess = (
            load_clip(model, pretrained, cache_dir) if isinstance(model, str) else model()
        )
        self.net = clip_model.requires_grad_(False).eval()
        self.transform = clip_tensor_transform(preprocess)

    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        return _clip_update(preds, target, self.net, self.transform)
