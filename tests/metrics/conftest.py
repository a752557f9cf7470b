"""Shared fixtures for the metrics tests: real photos and tiny randomly initialised networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data, filters, transform

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real RGB photos shipped with scikit-image, float64 ``(H, W, 3)`` in ``[0, 1]``.

    Cropped to at most 256 x 320 px (odd sizes kept) so the suite stays fast on a small CPU.
    """
    return {
        name: getattr(data, name)()[:256, :320].astype(np.float64) / 255.0 for name in PHOTO_NAMES
    }


def _distortions(image: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Three distorted copies of ``image`` (same shape): noise, blur, down-and-up resize."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(image + rng.normal(0.0, 0.08, image.shape), 0.0, 1.0)
    blurred = filters.gaussian(image, sigma=1.5, channel_axis=-1)
    h, w = image.shape[:2]
    small = transform.resize(image, (h // 3, w // 3), anti_aliasing=True)
    resized = np.clip(transform.resize(small, (h, w)), 0.0, 1.0)
    return [noisy, blurred, resized]


@pytest.fixture(scope="session")
def distorted_photos(photos: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per photo: ``(reference, distorted)``, both ``(3, H, W, 3)`` float64 stacks."""
    return {
        name: (np.stack([image] * 3), np.stack(_distortions(image, seed)))
        for seed, (name, image) in enumerate(photos.items())
    }


# open_clip's real ViT-B-32 config (224 px, patch 32, its preprocess) with narrow, shallow towers.
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip() -> tuple[torch.nn.Module, object]:
    """A randomly initialised open_clip ViT-B-32-shaped model and its real eval preprocess.

    Tests only: its embeddings are noise. Built by ``open_clip.create_model_and_transforms`` (the
    same classes and preprocess as the real checkpoint) with :data:`TINY_CLIP_CFG` widths.
    """
    import open_clip

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-32", pretrained=None, **TINY_CLIP_CFG
    )
    return model.eval(), preprocess


@pytest.fixture(scope="session")
def tiny_clip_cfg() -> dict:
    """The model config of :func:`tiny_clip`, as open_clip's ``open_clip_config.json`` holds it."""
    return TINY_CLIP_CFG
