"""Reading images for the image metrics: any file or PIL mode to ``[0, 1]`` RGB tensor pairs.

The protocol compares a generated image with its reference at the reference's size, in 8-bit RGB
(transparency on white), EXIF orientation applied. :func:`prepare_image_pair` does that for one
pair, :func:`prepare_image_pairs` stacks pairs of one reference size; the pixel metrics
(:mod:`mmpc.metrics.functional.image`) and the perceptual ones take their output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from mmpc.metrics.errors import ImageReadError

__all__ = ["ImageLike", "open_image", "prepare_image_pair", "prepare_image_pairs", "to_rgb"]

ImageLike = Image.Image | str | os.PathLike[str]


def open_image(image: ImageLike) -> Image.Image:
    """Return a fully decoded PIL image, raising ``ImageReadError`` naming a bad file."""
    if isinstance(image, Image.Image):
        return image
    path = Path(image)
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now: a truncated file fails here, not later
            return ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise ImageReadError(f"image file {path} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ImageReadError(f"cannot read image file {path}: {reason}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to 8-bit RGB.

    - transparent modes (RGBA, LA, PA, RGBa, P or L with a transparency key) are composited on
      **white**, the usual background of product photos;
    - 16/32-bit grey (``I;16*``, ``I``) is scaled from ``[0, 65535]`` and float grey (``F``) from
      ``[0, 1]`` to 8 bits (PIL's own ``convert`` would clip them at 255 / 1);
    - everything else (L, 1, P, CMYK, YCbCr, LAB, HSV) uses PIL's ``convert("RGB")``.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scaled = values if mode == "F" else values / 65535.0
        grey = np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode in ("P", "L") and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_tensor(image: Image.Image) -> Tensor:
    array = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def prepare_image_pair(generated: ImageLike, reference: ImageLike) -> tuple[Tensor, Tensor]:
    """Turn a generated image and its reference into metric inputs.

    Both are read (a path or a PIL image; EXIF orientation applied), converted to RGB with
    :func:`to_rgb` (transparency composited on white), and the generated image is resized to the
    reference's size with PIL's bilinear filter, as the protocol prescribes. Values are
    ``uint8 / 255`` in ``[0, 1]``.

    Args:
        generated: the completed (generated) image.
        reference: the original image; its size is kept.

    Returns:
        ``(preds, target)``, two float32 tensors of shape ``(1, 3, H_ref, W_ref)``.

    Raises:
        ImageReadError: a file is missing, truncated or not an image (the message names it).
    """
    ref = to_rgb(open_image(reference))
    gen = to_rgb(open_image(generated))
    if gen.size != ref.size:
        gen = gen.resize(ref.size, resample=Image.Resampling.BILINEAR)
    return _to_tensor(gen), _to_tensor(ref)


def prepare_image_pairs(pairs: Sequence[tuple[ImageLike, ImageLike]]) -> tuple[Tensor, Tensor]:
    """Stack many ``(generated, reference)`` pairs into one ``(N, 3, H, W)`` batch each.

    Every reference must have the same size (generated images are resized to it). Pairs with
    references of different sizes cannot share a tensor: score them one by one with
    :func:`prepare_image_pair` (or group them by size), which gives the same per-item values.

    Raises:
        ValueError: the list is empty or a reference's size differs from the first one's.
        ImageReadError: a file cannot be read (the message names it).
    """
    if not pairs:
        raise ValueError("prepare_image_pairs needs at least one (generated, reference) pair")
    preds, target = [], []
    for index, (generated, reference) in enumerate(pairs):
        p, t = prepare_image_pair(generated, reference)
        if target and t.shape != target[0].shape:
            raise ValueError(
                f"pair {index}: reference is {t.shape[-1]}x{t.shape[-2]} px but pair 0's is "
                f"{target[0].shape[-1]}x{target[0].shape[-2]} px; score different sizes per item"
            )
        preds.append(p)
        target.append(t)
    return torch.cat(preds), torch.cat(target)
