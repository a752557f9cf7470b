"""PSNR / SSIM / MSE against scikit-image on real photos, and the image-pair helper."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import metrics as skm
from torch.testing import assert_close

from mmpc.metrics import MSE, PSNR, SSIM, ImageReadError, prepare_image_pair
from mmpc.metrics.functional import (
    mean_squared_error,
    peak_signal_noise_ratio,
    structural_similarity,
)
from mmpc.metrics.functional.image_io import prepare_image_pairs, to_rgb


def _batch(stack: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` array to an ``(N, 3, H, W)`` tensor, dtype kept."""
    return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()


def _sk_values(fn, refs: np.ndarray, gens: np.ndarray, **kwargs) -> torch.Tensor:
    values = [float(fn(r, g, **kwargs)) for r, g in zip(refs, gens, strict=True)]
    return torch.tensor(values, dtype=torch.float64)


SK_SSIM = {"win_size": 7, "channel_axis": -1, "data_range": 1.0}


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_parity_with_scikit_image_on_photos(distorted_photos, name: str) -> None:
    refs, gens = distorted_photos[name]
    preds, target = _batch(gens), _batch(refs)  # float64, (3, 3, H, W)
    ref_mse = _sk_values(skm.mean_squared_error, refs, gens)
    ref_psnr = _sk_values(skm.peak_signal_noise_ratio, refs, gens, data_range=1.0)
    ref_ssim = _sk_values(skm.structural_similarity, refs, gens, **SK_SSIM)

    assert_close(mean_squared_error(preds, target, reduction="none"), ref_mse, rtol=1e-12, atol=0)
    assert_close(
        peak_signal_noise_ratio(preds, target, reduction="none"), ref_psnr, rtol=1e-12, atol=0
    )
    assert_close(
        structural_similarity(preds, target, reduction="none"), ref_ssim, rtol=1e-10, atol=1e-12
    )
    # The distortions are real: each value differs from the others and from a perfect score.
    assert ref_ssim.max() < 0.99 and len(set(ref_ssim.tolist())) == 3


def test_float32_inputs_match_scikit_image(distorted_photos) -> None:
    refs, gens = distorted_photos["chelsea"]
    refs32, gens32 = refs.astype(np.float32), gens.astype(np.float32)
    preds32, target32 = _batch(gens32), _batch(refs32)
    ref = _sk_values(skm.structural_similarity, refs32, gens32, **SK_SSIM)  # float32 inside
    ours = structural_similarity(preds32, target32, reduction="none")  # "auto": float32 too
    assert_close(ours, ref, rtol=0, atol=2e-6)  # both float32, different summation order
    fast = structural_similarity(preds32, target32, reduction="none", precision="float32")
    assert_close(ours, fast, rtol=0, atol=0)  # "auto" picked the inputs' float32
    exact = _sk_values(skm.structural_similarity, refs, gens, **SK_SSIM)
    assert_close(fast, exact, rtol=0, atol=2e-6)
    # precision="float64" on float32 tensors: scikit-image's float64 computation of the same
    # values (its path for the published uint8 images).
    wide = structural_similarity(preds32, target32, reduction="none", precision="float64")
    ref64 = _sk_values(
        skm.structural_similarity, refs32.astype(np.float64), gens32.astype(np.float64), **SK_SSIM
    )
    assert_close(wide, ref64, rtol=1e-10, atol=1e-12)
    assert (wide - fast).abs().max() > 0  # the two precisions really differ
    # Half-precision inputs are computed in float32, never in float16.
    half = structural_similarity(preds32.half(), target32.half(), reduction="none")
    assert_close(
        half,
        structural_similarity(
            preds32.half().float(), target32.half().float(), reduction="none", precision="float32"
        ),
        rtol=0,
        atol=0,
    )
    ours_psnr = peak_signal_noise_ratio(preds32, target32, reduction="none")
    ref_psnr = _sk_values(skm.peak_signal_noise_ratio, refs32, gens32, data_range=1.0)
    assert_close(ours_psnr, ref_psnr, rtol=1e-6, atol=0)


def test_ssim_window_is_uniform_seven_and_cropped() -> None:
    """A hand-checkable case: constant images differ only in mean, so S = luminance term."""
    preds = torch.full((1, 3, 9, 9), 0.2, dtype=torch.float64)
    target = torch.full((1, 3, 9, 9), 0.6, dtype=torch.float64)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert_close(structural_similarity(preds, target), torch.tensor(expected, dtype=torch.float64))


def test_classes_accumulate_like_the_functionals(distorted_photos) -> None:
    refs, gens = distorted_photos["coffee"]
    preds, target = _batch(gens[:, :96, :128]).float(), _batch(refs[:, :96, :128]).float()
    for cls, fn in (
        (PSNR, peak_signal_noise_ratio),
        (SSIM, structural_similarity),
        (MSE, mean_squared_error),
    ):
        per_item = fn(preds, target, reduction="none")
        mean_metric, none_metric = cls(), cls(reduction="none")
        for metric in (mean_metric, none_metric):
            metric.update(preds[:1], target[:1])
            metric.update(preds[1:], target[1:])
        assert_close(none_metric.compute(), per_item)
        assert_close(mean_metric.compute(), per_item.mean())
        assert_close(fn(preds, target), per_item.mean())
        assert mean_metric.label == cls.__name__
    assert PSNR.higher_is_better and SSIM.higher_is_better and not MSE.higher_is_better


def test_identical_images_psnr_is_inf_unless_capped() -> None:
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    other = image.clone()
    other[1] = (other[1] + 0.1).clamp(0, 1)
    values = peak_signal_noise_ratio(other, image, reduction="none")
    assert values[0] == float("inf") and torch.isfinite(values[1])
    assert skm.peak_signal_noise_ratio(image[0].numpy(), other[0].numpy(), data_range=1) == np.inf
    metric = PSNR()
    metric.update(other, image)
    assert metric.compute() == float("inf")
    capped = PSNR(max_db=100.0, reduction="none")
    capped.update(other, image)
    assert_close(capped.compute(), torch.stack([torch.tensor(100.0).double(), values[1]]))
    assert structural_similarity(image, image) == pytest.approx(1.0)
    assert mean_squared_error(image, image) == 0.0


def test_bad_shapes_raise_one_line_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        peak_signal_noise_ratio(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="smaller than the 7 px"):
        structural_similarity(torch.rand(1, 3, 6, 30), torch.rand(1, 3, 6, 30))
    with pytest.raises(ValueError, match="reduction"):
        SSIM(reduction="sum")
    with pytest.raises(ValueError, match="precision"):
        SSIM(precision="float16")


@pytest.mark.parametrize("fn", [structural_similarity, mean_squared_error])
def test_autograd_path_is_differentiable_and_equals_the_in_place_path(fn) -> None:
    gen = torch.Generator().manual_seed(0)
    preds = torch.rand(3, 3, 12, 14, dtype=torch.float64, generator=gen)
    target = torch.rand(3, 3, 12, 14, dtype=torch.float64, generator=gen)
    fast = fn(preds, target, reduction="none")  # no grad needed: reused in-place buffers
    leaf = preds.clone().requires_grad_(True)
    with_grad = fn(leaf, target, reduction="none")
    assert_close(with_grad.detach(), fast, rtol=1e-12, atol=1e-15)
    with_grad.sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


# ---- prepare_image_pair ------------------------------------------------------------------


def _rgb_array(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_prepare_resizes_generated_to_reference_bilinear(tmp_path: Path) -> None:
    generated = Image.fromarray(_rgb_array((120, 90), seed=1))
    reference = Image.fromarray(_rgb_array((80, 64), seed=2))
    ref_path = tmp_path / "ref.png"
    reference.save(ref_path)
    preds, target = prepare_image_pair(generated, ref_path)
    assert preds.shape == target.shape == (1, 3, 64, 80)
    expected = np.asarray(generated.resize((80, 64), Image.Resampling.BILINEAR)) / 255.0
    assert_close(preds[0].permute(1, 2, 0), torch.from_numpy(expected).float())
    assert_close(target[0].permute(1, 2, 0), torch.from_numpy(np.asarray(reference) / 255).float())


def test_modes_are_converted_to_rgb() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # one opaque red pixel, the rest fully transparent
    out = np.asarray(to_rgb(Image.fromarray(rgba, mode="RGBA")))
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[1, 1].tolist() == [255, 255, 255]  # transparent -> white background

    grey = np.asarray(to_rgb(Image.fromarray(np.full((3, 3), 77, dtype=np.uint8), mode="L")))
    assert grey.shape == (3, 3, 3) and (grey == 77).all()

    palette = Image.fromarray(_rgb_array((5, 5))).convert("P")
    assert (np.asarray(to_rgb(palette)) == np.asarray(palette.convert("RGB"))).all()

    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in CMYK
    assert np.asarray(to_rgb(cmyk))[0, 0].tolist() == [255, 0, 0]

    deep = Image.fromarray(np.array([[0, 65535], [32896, 257]], dtype=np.uint16))
    assert deep.mode.startswith("I;16")
    assert np.asarray(to_rgb(deep))[..., 0].tolist() == [[0, 255], [128, 1]]


def test_prepare_pairs_stacks_or_names_the_odd_size(tmp_path: Path) -> None:
    a, b = Image.fromarray(_rgb_array((70, 70))), Image.fromarray(_rgb_array((70, 70), 3))
    preds, target = prepare_image_pairs([(a, b), (b, a)])
    assert preds.shape == (2, 3, 70, 70)
    assert_close(preds[1], target[0])
    odd = Image.fromarray(_rgb_array((71, 70)))
    with pytest.raises(ValueError, match="pair 1: reference is 71x70"):
        prepare_image_pairs([(a, b), (a, odd)])


def test_corrupt_truncated_and_missing_files_name_the_file(tmp_path: Path) -> None:
    good = Image.fromarray(_rgb_array((64, 64)))
    buffer = io.BytesIO()
    good.save(buffer, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image")
    for bad in (truncated, garbage, tmp_path / "missing.png"):
        with pytest.raises(ImageReadError, match=re.escape(bad.name)) as info:
            prepare_image_pair(bad, good)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 6, 7, 8, 11, 15])
def test_window_sum_by_doubling_equals_naive_sums(width: int) -> None:
    from mmpc.metrics.functional.image import _window_sum

    src = torch.rand(2, 3, 17, 19, dtype=torch.float64)
    for dim in (-1, -2):
        n_out = src.shape[dim] - width + 1
        naive = torch.stack([src.narrow(dim, j, width).sum(dim) for j in range(n_out)], dim=dim)
        assert_close(_window_sum(src, dim, width), naive, rtol=1e-12, atol=1e-12)
        out = torch.empty_like(naive)
        workspace: dict[str, torch.Tensor] = {}
        _window_sum(src, dim, width, out=out, workspace=workspace, tag="t")
        assert_close(out, naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("win_size", [3, 5, 9, 11])
def test_ssim_other_window_sizes_match_scikit_image(distorted_photos, win_size: int) -> None:
    refs, gens = distorted_photos["coffee"]
    ref = _sk_values(
        skm.structural_similarity, refs, gens, win_size=win_size, channel_axis=-1, data_range=1.0
    )
    ours = structural_similarity(_batch(gens), _batch(refs), win_size=win_size, reduction="none")
    assert_close(ours, ref, rtol=1e-10, atol=1e-12)
