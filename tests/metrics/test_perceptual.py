"""LPIPS / ST-LPIPS against their packages, CLIP similarity against a direct computation."""

from __future__ import annotations

import json
import urllib.request
import warnings
from pathlib import Path

import lpips as lpips_pkg
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from stlpips_pytorch import stlpips
from torch.testing import assert_close

from mmpc.metrics import LPIPS, CLIPImageSimilarity, MissingWeightsError
from mmpc.metrics.backbones import load_state_dict
from mmpc.metrics.functional import clip_image_similarity, lpips
from mmpc.metrics.functional.perceptual import clip_tensor_transform


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test loudly instead of reaching (or waiting on) a network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


@pytest.fixture(scope="module")
def photo_batch(distorted_photos) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real photos and their distorted copies, 96 x 128 crops, ``(4, 3, 96, 128)`` float32."""
    refs = [
        distorted_photos[name][0][i, :96, :128] for name in ("chelsea", "rocket") for i in (0, 1)
    ]
    gens = [
        distorted_photos[name][1][i, :96, :128] for name in ("chelsea", "rocket") for i in (0, 1)
    ]
    to = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().contiguous()  # noqa: E731
    return to(gens), to(refs)


# Conv layers of torchvision's AlexNet.features: index -> (out, in, kernel).
ALEXNET_CONVS = {
    0: (64, 3, 11),
    3: (192, 64, 5),
    6: (384, 192, 3),
    8: (256, 384, 3),
    10: (256, 256, 3),
}


@pytest.fixture(scope="module")
def random_alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AlexNet ``features.*`` weights, random (He-scaled), saved as a local backbone file."""
    gen = torch.Generator().manual_seed(1)
    state = {}
    for index, (out, inp, k) in ALEXNET_CONVS.items():
        fan_in = inp * k * k
        state[f"features.{index}.weight"] = (
            torch.randn(out, inp, k, k, generator=gen) * (2 / fan_in) ** 0.5
        )
        state[f"features.{index}.bias"] = 0.01 * torch.randn(out, generator=gen)
    path = tmp_path_factory.mktemp("alexnet") / "alexnet-random.pth"
    torch.save(state, path)
    return path


def _reference_lpips(backbone: Path) -> torch.nn.Module:
    """The lpips package's own network with the same backbone loaded directly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False)
    features = {
        k.removeprefix("features."): v
        for k, v in torch.load(backbone, weights_only=True).items()
        if k.startswith("features.")
    }
    for sl in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        sl.load_state_dict({k: v for k, v in features.items() if k.split(".")[0] in sl._modules})
    return ref.eval()


def test_st_lpips_matches_the_package_on_photos(photo_batch) -> None:
    preds, target = photo_batch
    metric = LPIPS(net="st-lpips", reduction="none")
    metric.update(preds, target)
    reference = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    with torch.no_grad():
        expected = reference(2 * preds - 1, 2 * target - 1).reshape(-1)
    assert_close(metric.compute(), expected.double(), rtol=1e-5, atol=1e-6)
    assert metric.label == "ST-LPIPS"
    assert expected.min() > 0.0 and len(set(expected.tolist())) == 4
    # ... while its convolutions run channels-last (the faster CPU layout, backbones._for_cpu_convs)
    convs = [m for m in metric.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not reference.net.slice1[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_alex_lpips_with_local_backbone_matches_the_package(
    photo_batch, random_alexnet_file: Path, tmp_path: Path
) -> None:
    preds, target = photo_batch
    reference = _reference_lpips(random_alexnet_file)
    with torch.no_grad():
        expected = reference(preds, target, normalize=True).reshape(-1)
    ours = lpips(preds, target, net="alex", backbone_path=random_alexnet_file, reduction="none")
    assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    metric = LPIPS(net=lambda x, y: reference(x, y), reduction="mean")
    metric.update(preds, target)
    assert_close(metric.compute(), expected.double().mean(), rtol=1e-5, atol=1e-6)
    assert metric.label == "LPIPS"
    # A safetensors copy of the backbone is read to the same tensors.
    safe = tmp_path / "alexnet.safetensors"
    state = torch.load(random_alexnet_file, weights_only=True)
    save_file(state, str(safe))
    assert_close(load_state_dict(safe), state, rtol=0, atol=0)


def test_alex_lpips_without_cached_backbone_raises_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth") as info:
        LPIPS()
    assert "\n" not in str(info.value) and "backbone_path" in str(info.value)
    wrong = tmp_path / "not-alexnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(MissingWeightsError, match="not a torchvision AlexNet"):
        LPIPS(backbone_path=wrong)


def test_lpips_skips_and_counts_images_under_64_px(photo_batch) -> None:
    calls: list[tuple[int, ...]] = []

    def net(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        assert x.min() >= -1 and x.max() <= 1 and x.min() < 0  # scaled to [-1, 1]
        return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)

    preds, target = photo_batch
    tiny_p, tiny_t = preds[:3, :, :40, :100], target[:3, :, :40, :100]
    metric = LPIPS(net=net, reduction="none")
    metric.update(preds, target)
    metric.update(tiny_p, tiny_t)
    values = metric.compute()
    assert values.shape == (7,) and values[4:].isnan().all() and not values[:4].isnan().any()
    assert int(metric.skipped) == 3 and int(metric.count) == 4
    # Only the 4 large pairs reached the network (in chunks), never the tiny batch.
    assert sum(c[0] for c in calls) == 4 and all(c[1:] == preds.shape[1:] for c in calls)
    mean_metric = LPIPS(net=net, label="toy")
    mean_metric.update(preds, target)
    mean_metric.update(tiny_p, tiny_t)
    assert_close(mean_metric.compute(), values[:4].mean())
    assert mean_metric.label == "toy"
    value, skipped = lpips(tiny_p, tiny_t, net=net, return_skipped=True)
    assert skipped == 3 and value.isnan()


def test_lpips_identical_images_and_range_check(photo_batch) -> None:
    preds, _ = photo_batch
    metric = LPIPS(net="st-lpips", reduction="none")
    metric.update(preds[:2], preds[:2])
    assert_close(metric.compute(), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metric.update(preds[:2] * 2 - 1, preds[:2])


# ---- CLIP --------------------------------------------------------------------------------


def _direct_clip(model, preprocess, preds, target) -> torch.Tensor:
    """Reference: one image at a time through open_clip's own transforms and encode_image."""
    steps = [t for t in preprocess.transforms if type(t).__name__ in ("Resize", "CenterCrop")]
    norm = next(t for t in preprocess.transforms if type(t).__name__ == "Normalize")
    out = []
    with torch.no_grad():
        for p, t in zip(preds, target, strict=True):
            embs = []
            for image in (p, t):
                for step in steps:
                    image = step(image)
                embs.append(model.encode_image(norm(image)[None])[0])
            out.append(F.cosine_similarity(embs[0], embs[1], dim=0))
    return torch.stack(out)


def test_clip_matches_direct_computation(tiny_clip, photo_batch) -> None:
    model, preprocess = tiny_clip
    preds, target = photo_batch
    metric = CLIPImageSimilarity(model=lambda: (model, preprocess), reduction="none")
    metric.update(preds[:2], target[:2])
    metric.update(preds[2:], target[2:])
    expected = _direct_clip(model, preprocess, preds, target)
    assert_close(metric.compute(), expected.double(), rtol=1e-5, atol=1e-5)
    same = clip_image_similarity(preds, preds, model=lambda: (model, preprocess))
    assert_close(same, torch.tensor(1.0), rtol=0, atol=1e-5)


def test_clip_batched_torch_preprocess_is_close_to_pil_path(tiny_clip, photo_batch) -> None:
    """Our batched tensor resize/crop/normalise versus open_clip's own PIL preprocess."""
    _, preprocess = tiny_clip
    preds, _ = photo_batch
    as_uint8 = (preds * 255).round().to(torch.uint8)  # (4, 3, 96, 128)
    pil_pixels = torch.stack(
        [preprocess(Image.fromarray(x.permute(1, 2, 0).numpy())) for x in as_uint8]
    )  # (4, 3, 224, 224)
    ours = clip_tensor_transform(preprocess)(as_uint8.float() / 255)  # (4, 3, 224, 224)
    assert ours.shape == pil_pixels.shape
    diff = (ours - pil_pixels).abs()
    # Torch's antialiased bicubic and PIL's differ by rounding-level amounts, never more.
    assert diff.mean() < 0.01 and diff.max() < 0.25, (diff.mean(), diff.max())


def _write_open_clip_folder(folder: Path, model: torch.nn.Module, cfg: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))


def test_clip_loads_real_weights_from_local_dir_and_hf_cache(
    tiny_clip, tiny_clip_cfg, photo_batch, tmp_path: Path
) -> None:
    model, preprocess = tiny_clip
    preds, target = photo_batch
    injected = CLIPImageSimilarity(model=lambda: (model, preprocess), reduction="none")
    injected.update(preds, target)
    expected = injected.compute()

    local = tmp_path / "local"
    _write_open_clip_folder(local, model, tiny_clip_cfg)
    from_dir = CLIPImageSimilarity(model=f"local-dir:{local}", reduction="none")
    from_dir.update(preds, target)
    assert_close(from_dir.compute(), expected, rtol=1e-5, atol=1e-6)

    # A Hugging Face cache laid out as huggingface_hub writes it: read from disk, never fetched.
    repo = tmp_path / "hub" / "models--org--tiny-clip"
    _write_open_clip_folder(repo / "snapshots" / "abc123", model, tiny_clip_cfg)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    from_hub = CLIPImageSimilarity(
        model="hf-hub:org/tiny-clip", cache_dir=str(tmp_path / "hub"), reduction="none"
    )
    from_hub.update(preds, target)
    assert_close(from_hub.compute(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "pretrained", "match"),
    [
        ("ViT-B-32", "openai", "not in the Hugging Face cache"),
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None, "not in the Hugging Face cache"),
        ("ViT-B-32", None, "no pretrained weights given"),
        ("ViT-B-32", "/nowhere/clip.pt", "neither an existing file"),
        ("local-dir:/nowhere", None, "lacks open_clip_config.json"),
    ],
)
def test_clip_missing_weights_raise_one_line(
    tmp_path: Path, model: str, pretrained: str | None, match: str
) -> None:
    with pytest.raises(MissingWeightsError, match=match) as info:
        CLIPImageSimilarity(model=model, pretrained=pretrained, cache_dir=str(tmp_path))
    assert "\n" not in str(info.value)
