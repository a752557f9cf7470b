"""Network-based image metrics: LPIPS (and ST-LPIPS) and CLIP image-image similarity.

Inputs are float tensors ``(N, 3, H, W)`` in ``[0, 1]``, RGB. The networks come from
:mod:`mmpc.metrics.backbones` (offline only) or are injected by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision import transforms as T

from mmpc.metrics.backbones import LPIPSVariant, load_clip, load_lpips_net
from mmpc.metrics.functional.image import Reduction, _check_pair, _chunk

LPIPS_MIN_SIDE = 64
LPIPSNet = Callable[[Tensor, Tensor], Tensor]
# Transforms that only turn a PIL image into a tensor; a tensor batch skips them.
_PIL_ONLY = (T.ToTensor, T.PILToTensor)
_PIL_ONLY_NAMES = {"MaybeToTensor", "MaybeConvertMode", "_convert_to_rgb"}


def _check_unit_range(images: Tensor, name: str) -> None:
    lo, hi = torch.aminmax(images.detach())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must hold values in [0, 1], found [{lo:.4g}, {hi:.4g}]")


def _reduce_scored(values: Tensor, reduction: Reduction) -> Tensor:
    """``"none"``: values as they are (``NaN`` = skipped); ``"mean"``: mean of the scored ones."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.nanmean()  # NaN when nothing was scored
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _lpips_update(
    preds: Tensor, target: Tensor, net: LPIPSNet, min_side: int = LPIPS_MIN_SIDE
) -> Tensor:
    """Per-item LPIPS ``(N,)``; ``NaN`` for pairs under ``min_side`` px (skipped, not scored)."""
    _check_pair(preds, target)
    _check_unit_range(preds, "preds")
    _check_unit_range(target, "target")
    n = preds.shape[0]
    if min(preds.shape[-2:]) < min_side:
        return torch.full((n,), float("nan"), dtype=preds.dtype, device=preds.device)
    # LPIPS networks expect RGB in [-1, 1]. On CPU one pair per forward measured faster than
    # whole batches (fresh activation memory per batch dominates); accelerators take chunks.
    # Channels-last inputs meet the loaders' channels-last convolutions (backbones._for_cpu_convs).
    size, nhwc = _chunk(preds), torch.channels_last
    distances = [
        net(
            (2.0 * p - 1.0).contiguous(memory_format=nhwc),
            (2.0 * t - 1.0).contiguous(memory_format=nhwc),
        ).reshape(len(p))  # (n,)
        for p, t in zip(preds.split(size), target.split(size), strict=True)
    ]
    return torch.cat(distances)  # (N,)


def lpips(
    preds: Tensor,
    target: Tensor,
    net: LPIPSVariant | LPIPSNet = "alex",
    backbone_path: str | os.PathLike[str] | None = None,
    reduction: Reduction = "mean",
    min_side: int = LPIPS_MIN_SIDE,
    return_skipped: bool = False,
) -> Tensor | tuple[Tensor, int]:
    """Learned perceptual image patch similarity (lower is more similar).

    ``LPIPS(x, y) = sum_l mean_{h,w} || w_l ⊙ (f̂_l(x) - f̂_l(y)) ||²`` with ``f̂_l`` the
    channel-normalised AlexNet activations of layer ``l`` and ``w_l`` the learned linear heads
    (Zhang et al. 2018), computed by the ``lpips`` package's network on inputs ``2x - 1``.

    Following the protocol, pairs whose smaller side is under ``min_side`` (64) px are *skipped*:
    their per-item value is ``NaN``, the mean leaves them out, and their number is returned with
    ``return_skipped=True``.

    Args:
        preds: generated images ``(N, 3, H, W)`` in ``[0, 1]``, RGB.
        target: reference images, same shape.
        net: ``"alex"`` (published LPIPS; needs the torchvision AlexNet file, see
            :func:`mmpc.metrics.backbones.load_lpips_net`), ``"st-lpips"`` (shift-tolerant
            LPIPS, offline, label it "ST-LPIPS"), or a network ``net(x, y) -> (N, 1, 1, 1)``
            taking ``[-1, 1]`` inputs. Passing a loaded network avoids reloading per call.
        backbone_path: local AlexNet backbone file for ``net="alex"``.
        reduction: ``"mean"`` over scored items or ``"none"`` (``(N,)``, ``NaN`` = skipped).
        min_side: smallest side, in px, that is scored.
        return_skipped: also return the number of skipped pairs.

    Raises:
        MissingWeightsError: the chosen network's weights are not on disk.
    """
    model = load_lpips_net(net, backbone_path) if isinstance(net, str) else net
    values = _lpips_update(preds, target, model, min_side)
    result = _reduce_scored(values, reduction)
    if return_skipped:
        return result, int(values.isnan().sum())
    return result


def clip_tensor_transform(preprocess: Callable[[Any], Any]) -> Callable[[Tensor], Tensor]:
    """The tensor part of an open_clip eval preprocess, applied to a whole batch at once.

    open_clip's eval preprocess is ``Resize(224, bicubic, shortest side) -> CenterCrop(224) ->
    to RGB -> ToTensor -> Normalize(CLIP mean, std)``. The PIL-only steps are dropped (the batch
    is already an RGB tensor in ``[0, 1]``); torchvision runs the others on ``(N, 3, H, W)``
    (bicubic with antialiasing, as PIL's resize does).

    Raises:
        ValueError: ``preprocess`` is not a torchvision ``Compose``.
    """
    if not isinstance(preprocess, T.Compose):
        raise ValueError(
            f"CLIP preprocess must be a torchvision Compose (open_clip's), got {type(preprocess)}"
        )
    steps = [
        t
        for t in preprocess.transforms
        if not isinstance(t, _PIL_ONLY)
        and type(t).__name__ not in _PIL_ONLY_NAMES
        and getattr(t, "__name__", "") not in _PIL_ONLY_NAMES
    ]
    return T.Compose(steps)


def _clip_embed(images: Tensor, model: nn.Module, transform: Callable[[Tensor], Tensor]) -> Tensor:
    """Unit-norm CLIP image embeddings ``(N, D)`` of ``[0, 1]`` images ``(N, 3, H, W)``."""
    param = next(model.parameters())
    pixels = transform(images.to(device=param.device, dtype=torch.float32))  # (N, 3, 224, 224)
    embeddings = model.encode_image(pixels.to(param.dtype))  # (N, D)
    return F.normalize(embeddings.float(), dim=-1)


def _clip_update(
    preds: Tensor, target: Tensor, model: nn.Module, transform: Callable[[Tensor], Tensor]
) -> Tensor:
    """Per-item cosine similarity of the two images' CLIP embeddings, ``(N,)``."""
    _check_pair(preds, target)
    _check_unit_range(preds, "preds")
    _check_unit_range(target, "target")
    both = torch.cat([preds, target])  # (2N, 3, H, W): one forward for both sides
    emb_preds, emb_target = _clip_embed(both, model, transform).chunk(2)  # (N, D) each
    return (emb_preds * emb_target).sum(dim=-1)  # (N,)


def clip_image_similarity(
    preds: Tensor,
    target: Tensor,
    model: str | Callable[[], tuple[nn.Module, Callable[[Any], Any]]] = "ViT-B-32",
    pretrained: str | None = "openai",
    cache_dir: str | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Cosine similarity of CLIP image embeddings, ``cos(E(x), E(y)) = E(x)·E(y) / |E(x)||E(y)|``.

    ``E`` is the CLIP image encoder (``model.encode_image``) after open_clip's eval
    preprocessing (resize 224 bicubic, centre crop, CLIP mean/std), run batched in torch.

    Args:
        preds: generated images ``(N, 3, H, W)`` in ``[0, 1]``, RGB.
        target: reference images, same shape.
        model: an open_clip name (``"ViT-B-32"``, ``"hf-hub:org/repo"``, ``"local-dir:/x"``) or a
            callable returning ``(model, preprocess)`` as ``open_clip.create_model_and_transforms``
            gives (its second and third values).
        pretrained: open_clip tag or checkpoint file for a plain architecture name.
        cache_dir: Hugging Face cache folder to look in (default: the standard one).
        reduction: ``"mean"`` or ``"none"`` (``(N,)`` per-item values).

    Raises:
        MissingWeightsError: the weights are not on disk.
    """
    clip_model, preprocess = (
        load_clip(model, pretrained, cache_dir) if isinstance(model, str) else model()
    )
    values = _clip_update(preds, target, clip_model, clip_tensor_transform(preprocess))
    return _reduce_scored(values, reduction)
