"""Throughput of the image metrics beside their reference implementations, in one process.

Pixel metrics (MSE, PSNR, SSIM): ``mmpc.metrics`` classes fed batches of ``(B, 3, S, S)`` versus a
per-image scikit-image loop on the same ``(S, S, 3)`` arrays (what the published code does, one
pair at a time), float32 arrays. SSIM is computed in the arrays' float type by scikit-image and
by our default (``precision="auto"``); the row "SSIM (float64)" times ``precision="float64"``
beside scikit-image on float64 arrays (the published uint8 images are computed in float64).
Network metrics: ``LPIPS(net="st-lpips")`` batched versus the ``stlpips-pytorch`` network
called per pair, and ``CLIPImageSimilarity`` batched versus a per-pair ``encode_image`` loop with
the same transforms. CLIP runs a *randomly initialised* full-size open_clip ViT-B-32 (no weights
here): the compute is the real model's, the values are noise and only the timing is used. The
plain AlexNet LPIPS is timed only when its backbone is cached.

Pairs are random 256 x 256 crops of scikit-image's real photos (reference) and distorted copies
(Gaussian noise, blur), so values are realistic. Every row also prints the largest difference
between the two implementations' per-item values.

Usage::

    uv run python benchmarks/metrics/bench_image.py                   # 1,000 pairs, 256 px
    uv run python benchmarks/metrics/bench_image.py --net-pairs 1000  # all metrics on 1,000
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data
from skimage import metrics as skm
from tqdm import tqdm

from mmpc.metrics import LPIPS, MSE, PSNR, SSIM, CLIPImageSimilarity, MissingWeightsError
from mmpc.metrics.functional.perceptual import clip_tensor_transform
from mmpc.metrics.image import PerItemImageMetric

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def make_pairs(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (generated, reference) pairs ``(n, 3, size, size)`` float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    photos = [torch.from_numpy(getattr(data, name)()).permute(2, 0, 1) for name in PHOTOS]
    refs = torch.empty(n, 3, size, size)
    for i in range(n):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[1] - size + 1)
        left = rng.integers(0, photo.shape[2] - size + 1)
        refs[i] = photo[:, top : top + size, left : left + size].float() / 255.0
    gen = torch.Generator().manual_seed(seed)
    noisy = refs + 0.05 * torch.randn(refs.shape, generator=gen)
    blurred = F.avg_pool2d(refs, 3, stride=1, padding=1, count_include_pad=False)
    preds = torch.where(torch.arange(n)[:, None, None, None] % 2 == 0, noisy, blurred)
    return preds.clamp(0.0, 1.0), refs


def run_ours(metric: PerItemImageMetric, preds: torch.Tensor, target: torch.Tensor, batch: int):
    """Time ``update`` over batches plus ``compute``; return (seconds, per-item values)."""
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, len(preds), batch):
            metric.update(preds[lo : lo + batch], target[lo : lo + batch])
        values = metric.compute()
    return time.perf_counter() - start, values.double()


def run_loop(fn: Callable[[int], float], n: int, desc: str) -> tuple[float, torch.Tensor]:
    """Time a per-pair loop ``fn(i)``; return (seconds, per-item values)."""
    start = time.perf_counter()
    with torch.inference_mode():
        values = [fn(i) for i in tqdm(range(n), desc=desc, leave=False)]
    return time.perf_counter() - start, torch.tensor(values, dtype=torch.float64)


def report(rows: list[tuple[str, int, float, float, float, str]]) -> None:
    print()
    header = f"{'metric':<22}{'pairs':>7}{'ours pairs/s':>14}{'ref pairs/s':>13}{'ratio':>8}"
    print(header + "  max |ours - ref|  reference")
    for name, n, ours_s, ref_s, diff, ref_name in rows:
        print(
            f"{name:<22}{n:>7}{n / ours_s:>14.1f}{n / ref_s:>13.1f}{ref_s / ours_s:>7.2f}x"
            f"  {diff:>16.2e}  {ref_name}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="pairs for MSE/PSNR/SSIM")
    parser.add_argument(
        "--net-pairs", type=int, default=64, help="pairs for LPIPS/CLIP (0: skip them)"
    )
    parser.add_argument("--size", type=int, default=256, help="image side in px")
    parser.add_argument("--batch", type=int, default=50, help="batch size of our metrics")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch default); scikit-image uses 1",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}; images {args.size}x{args.size} RGB"
    )
    preds, target = make_pairs(args.pairs, args.size, args.seed)
    preds_np = np.ascontiguousarray(preds.permute(0, 2, 3, 1).numpy())  # (N, S, S, 3)
    target_np = np.ascontiguousarray(target.permute(0, 2, 3, 1).numpy())
    n = args.pairs
    rows = []

    # scikit-image computes SSIM in the arrays' float type (float64 for the published uint8
    # images), so each of our precisions is timed against the reference in the same precision.
    preds_64, target_64 = preds_np.astype(np.float64), target_np.astype(np.float64)
    ssim_ref = lambda i: skm.structural_similarity(  # noqa: E731
        target_64[i], preds_64[i], win_size=7, channel_axis=-1, data_range=1.0
    )
    ssim_ref32 = lambda i: skm.structural_similarity(  # noqa: E731
        target_np[i], preds_np[i], win_size=7, channel_axis=-1, data_range=1.0
    )
    pixel = [
        ("MSE", MSE, lambda i: skm.mean_squared_error(target_np[i], preds_np[i]), "skimage MSE"),
        (
            "PSNR",
            PSNR,
            lambda i: skm.peak_signal_noise_ratio(target_np[i], preds_np[i], data_range=1.0),
            "skimage PSNR (data_range 1)",
        ),
        ("SSIM", SSIM, ssim_ref32, "skimage SSIM (win 7, channel_axis), float32"),
        (
            "SSIM (float64)",
            lambda **kw: SSIM(precision="float64", **kw),
            ssim_ref,
            "skimage SSIM (win 7, channel_axis), float64",
        ),
    ]
    ref_runs: dict[str, tuple[float, torch.Tensor]] = {}  # each reference loop runs once
    for name, cls, ref_fn, ref_name in pixel:
        run_ours(cls(reduction="none"), preds[:8], target[:8], args.batch)  # warm-up
        ours_s, ours = run_ours(cls(reduction="none"), preds, target, args.batch)
        if ref_name not in ref_runs:
            ref_runs[ref_name] = run_loop(lambda i, f=ref_fn: float(f(i)), n, name)
        ref_s, ref = ref_runs[ref_name]
        rows.append((name, n, ours_s, ref_s, float((ours - ref).abs().max()), ref_name))
        print(f"{name}: ours {ours_s:.2f} s, reference {ref_s:.2f} s")

    m = min(args.net_pairs, n)
    if m == 0:  # --net-pairs 0: pixel metrics only
        report(rows)
        return
    net_p, net_t = preds[:m], target[:m]
    st_metric = LPIPS(net="st-lpips", reduction="none")
    ours_s, ours = run_ours(st_metric, net_p, net_t, args.batch)
    st_net = st_metric.net
    ref_s, ref = run_loop(
        lambda i: float(st_net(2 * net_p[i : i + 1] - 1, 2 * net_t[i : i + 1] - 1)), m, "ST-LPIPS"
    )
    rows.append(("ST-LPIPS", m, ours_s, ref_s, float((ours - ref).abs().max()), "stlpips per pair"))

    try:
        alex = LPIPS(reduction="none")
    except MissingWeightsError as err:
        print(f"LPIPS (AlexNet) not timed: {err}")
    else:
        ours_s, ours = run_ours(alex, net_p, net_t, args.batch)
        alex_net = alex.net
        ref_s, ref = run_loop(
            lambda i: float(alex_net(net_p[i : i + 1], net_t[i : i + 1], normalize=True)),
            m,
            "LPIPS",
        )
        rows.append(("LPIPS", m, ours_s, ref_s, float((ours - ref).abs().max()), "lpips per pair"))

    import open_clip

    torch.manual_seed(args.seed)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    clip_metric = CLIPImageSimilarity(model=lambda: (model, preprocess), reduction="none")
    ours_s, ours = run_ours(clip_metric, net_p, net_t, args.batch)
    transform = clip_tensor_transform(preprocess)

    def clip_pair(i: int) -> float:
        a = model.encode_image(transform(net_p[i : i + 1]))
        b = model.encode_image(transform(net_t[i : i + 1]))
        return float(F.cosine_similarity(a, b))

    ref_s, ref = run_loop(clip_pair, m, "CLIP")
    rows.append(
        ("CLIP (random ViT-B-32)", m, ours_s, ref_s, float((ours - ref).abs().max()), "per pair")
    )
    report(rows)


if __name__ == "__main__":
    main()
