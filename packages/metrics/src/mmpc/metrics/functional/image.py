"""Pixel image metrics (PSNR, SSIM, MSE) computed batched in torch.

All metrics take float tensors ``(N, 3, H, W)`` with values in ``[0, 1]`` and return one value per
item (``reduction="none"``) or their mean (``reduction="mean"``), as float64. They equal
scikit-image's ``mean_squared_error``, ``peak_signal_noise_ratio(data_range=1)`` and
``structural_similarity(win_size=7, channel_axis=-1, data_range=1.0)`` on the same ``(H, W, 3)``
arrays (see ``tests/metrics/test_image.py``). MSE/PSNR take differences in the inputs' float type
and accumulate in float64, exactly as scikit-image; SSIM is computed, like scikit-image and
torchmetrics, in the inputs' float type by default (``precision="auto"``: float64 for float64
tensors, float32 for float32, float16/bfloat16 promoted to float32), or in the precision asked
for; means are accumulated in float64. The published path (scikit-image on uint8 images)
computes in float64: float32 SSIM differs from it by ~1e-6.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Reduction = Literal["mean", "none"]

_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}
Precision = Literal["auto", "float64", "float32"]
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_CPU_CHUNK = 1  # items per float64 pass on CPU: one image's maps stay in cache (measured best)
_DEVICE_CHUNK = 64  # on accelerators, larger batches amortise kernel launches


def _chunk(images: Tensor) -> int:
    return _CPU_CHUNK if images.device.type == "cpu" else _DEVICE_CHUNK


def _check_pair(preds: Tensor, target: Tensor, min_side: int = 1) -> None:
    """Raise one-line ``ValueError`` unless both are float ``(N, 3, H, W)`` tensors of one shape."""
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(target.shape)}"
        )
    if preds.ndim != 4 or preds.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(preds.shape)}")
    if not (preds.is_floating_point() and target.is_floating_point()):
        raise ValueError(f"expected float tensors in [0, 1], got {preds.dtype} and {target.dtype}")
    if min(preds.shape[-2:]) < min_side:
        raise ValueError(
            f"images of {preds.shape[-2]}x{preds.shape[-1]} px are smaller than the "
            f"{min_side} px this metric needs"
        )


def _reduce(values: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _mse_update(preds: Tensor, target: Tensor) -> Tensor:
    """Per-item mean squared error ``mean_{c,h,w} (x - y)^2``, shape ``(N,)``, float64.

    As scikit-image: differences in the inputs' float type, the mean accumulated in float64.
    """
    _check_pair(preds, target)
    size = _chunk(preds)
    needs_grad = torch.is_grad_enabled() and (preds.requires_grad or target.requires_grad)
    per_item = preds[0].numel()
    chunks = []
    for p, t in zip(preds.split(size), target.split(size), strict=True):
        diff = p - t  # (n, 3, H, W)
        # In place where autograd allows it: on CPU fresh memory per image is the main cost.
        squared = diff.square() if needs_grad else diff.square_()
        chunks.append(squared.reshape(len(p), -1).sum(dim=1, dtype=torch.float64) / per_item)
    return torch.cat(chunks)  # (N,)


def _psnr_compute(mse: Tensor, data_range: float = 1.0, max_db: float | None = None) -> Tensor:
    """``PSNR = 10 log10(R^2 / MSE)``; ``+inf`` where ``MSE == 0`` unless capped at ``max_db``."""
    psnr = 10.0 * torch.log10(data_range**2 / mse)  # division by 0 gives +inf, as scikit-image
    if max_db is not None:
        psnr = psnr.clamp(max=max_db)
    return psnr


def mean_squared_error(preds: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean squared error per image pair.

    ``MSE(x, y) = 1/(3HW) * sum_{c,h,w} (x_chw - y_chw)^2``, equal to scikit-image's
    ``mean_squared_error`` on the ``(H, W, 3)`` arrays.

    Args:
        preds: generated images ``(N, 3, H, W)`` in ``[0, 1]``.
        target: reference images, same shape.
        reduction: ``"mean"`` over items or ``"none"`` for the ``(N,)`` per-item values.

    Returns:
        A float64 scalar, or a float64 ``(N,)`` tensor.
    """
    return _reduce(_mse_update(preds, target), reduction)


def peak_signal_noise_ratio(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    reduction: Reduction = "mean",
    max_db: float | None = None,
) -> Tensor:
    """Peak signal-to-noise ratio per image pair, in dB.

    ``PSNR(x, y) = 10 * log10(R^2 / MSE(x, y))`` with ``R = data_range`` (1 for ``[0, 1]``
    images), equal to scikit-image's ``peak_signal_noise_ratio(data_range=1)``.

    Identical images have ``MSE = 0`` and, like scikit-image (and so the published numbers),
    ``PSNR = +inf``. The mean over items is then ``+inf`` too: it is the reference's value, and
    it says plainly that an item was a copy. Pass ``max_db`` (e.g. 100) to cap each item's value
    instead, which keeps means and standard deviations finite.

    Args:
        preds: generated images ``(N, 3, H, W)`` in ``[0, 1]``.
        target: reference images, same shape.
        data_range: ``R``, the span of possible pixel values.
        reduction: ``"mean"`` over items or ``"none"`` for the ``(N,)`` per-item values.
        max_db: optional cap applied to each item's PSNR before reduction.

    Returns:
        A float64 scalar, or a float64 ``(N,)`` tensor.
    """
    return _reduce(_psnr_compute(_mse_update(preds, target), data_range, max_db), reduction)


def _ssim_update(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    win_size: int = 7,
    precision: Precision = "auto",
) -> Tensor:
    """Per-item SSIM, shape ``(N,)``, with a uniform window as scikit-image (see the public twin).

    A ``win_size`` x ``win_size`` mean without padding visits exactly the windows that lie
    wholly inside the image, i.e. the valid area scikit-image keeps after cropping
    ``(win_size - 1) // 2`` pixels from each border.
    """
    _check_pair(preds, target, min_side=win_size)
    if win_size % 2 != 1 or win_size < 3:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size}")
    dtype = _ssim_dtype(precision, preds, target)
    # Chunks bound the float64 working set (15 maps per item) and keep it in cache on CPU.
    size = _chunk(preds)
    pairs = zip(preds.split(size), target.split(size), strict=True)
    needs_grad = torch.is_grad_enabled() and (preds.requires_grad or target.requires_grad)
    if needs_grad:
        return torch.cat([_ssim_chunk(p, t, data_range, win_size, dtype) for p, t in pairs])
    workspace: dict[str, Tensor] = {}
    return torch.cat(
        [_ssim_chunk_inplace(p, t, data_range, win_size, dtype, workspace) for p, t in pairs]
    )  # (N,)


def _ssim_dtype(precision: str, preds: Tensor, target: Tensor) -> torch.dtype:
    """The float type SSIM is computed in (``"auto"``: the inputs', at least float32)."""
    check_precision(precision)
    if precision == "auto":
        return torch.promote_types(torch.promote_types(preds.dtype, target.dtype), torch.float32)
    return _PRECISIONS[precision]


def check_precision(precision: str) -> None:
    """Raise a one-line ``ValueError`` unless ``precision`` is auto, float64 or float32."""
    if precision != "auto" and precision not in _PRECISIONS:
        raise ValueError(f"precision must be 'auto', 'float64' or 'float32', got {precision!r}")


def _buffer(
    workspace: dict[str, Tensor],
    name: str,
    shape: tuple[int, ...],
    like: Tensor,
    dtype: torch.dtype,
) -> Tensor:
    buf = workspace.get(name)
    if buf is None or buf.shape != shape:
        buf = workspace[name] = torch.empty(shape, dtype=dtype, device=like.device)
    return buf


def _ssim_chunk_inplace(
    preds: Tensor,
    target: Tensor,
    data_range: float,
    win_size: int,
    dtype: torch.dtype,
    workspace: dict[str, Tensor],
) -> Tensor:
    """:func:`_ssim_chunk` without autograd, writing into buffers reused across chunks.

    The same formula (equal to float64 rounding, see the tests), but fresh memory is
    allocated once per call instead of once per chunk: on CPU, touching new pages for every
    image costs more than the arithmetic.
    """
    n, _, height, width = preds.shape
    h_out, w_out = height - win_size + 1, width - win_size + 1
    maps = _buffer(workspace, "maps", (n, 15, height, width), preds, dtype)
    rows = _buffer(workspace, "rows", (n, 15, height, w_out), preds, dtype)
    box = _buffer(workspace, "box", (n, 15, h_out, w_out), preds, dtype)
    ux_uy = _buffer(workspace, "a", (n, 3, h_out, w_out), preds, dtype)
    sq_means = _buffer(workspace, "b", (n, 3, h_out, w_out), preds, dtype)
    x, y = maps[:, 0:3], maps[:, 3:6]
    x.copy_(preds)
    y.copy_(target)
    torch.mul(x, x, out=maps[:, 6:9])
    torch.mul(y, y, out=maps[:, 9:12])
    torch.mul(x, y, out=maps[:, 12:15])
    _window_sum(maps, -1, win_size, out=rows, workspace=workspace, tag="w")
    _window_sum(rows, -2, win_size, out=box, workspace=workspace, tag="h")
    box.div_(win_size * win_size)
    ux, uy, uxx, uyy, uxy = box.chunk(5, dim=1)  # views, each (n, 3, h, w)
    n_px = win_size * win_size
    cov_norm = n_px / (n_px - 1)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    torch.mul(ux, uy, out=ux_uy)
    torch.mul(ux, ux, out=sq_means).addcmul_(uy, uy)
    numerator = uxy.sub_(ux_uy).mul_(2 * cov_norm).add_(c2).mul_(ux_uy.mul_(2).add_(c1))
    denominator = uxx.add_(uyy).sub_(sq_means).mul_(cov_norm).add_(c2).mul_(sq_means.add_(c1))
    ssim_map = numerator.div_(denominator)  # (n, 3, h, w)
    return ssim_map.reshape(n, 3, -1).mean(dim=2, dtype=torch.float64).mean(dim=1)  # (n,)


def _window_sum(
    src: Tensor,
    dim: int,
    width: int,
    out: Tensor | None = None,
    workspace: dict[str, Tensor] | None = None,
    tag: str = "",
) -> Tensor:
    """Sums of ``width`` consecutive entries along ``dim`` (``L - width + 1`` of them).

    By doubling: sums over 2, 4, ... entries are built from the previous ones, then the binary
    digits of ``width`` are combined (7 = 4 + 2 + 1: 4 additions per element instead of the 6
    of shifted adds). With ``out`` and ``workspace`` it writes in place into reused buffers
    (no autograd); otherwise it allocates (autograd works).
    """
    n_out = src.shape[dim] - width + 1
    partial = {1: src}  # partial[p][j] = sum of src[j : j + p] along dim
    p = 1
    while 2 * p <= width:
        prev = partial[p]
        m = prev.shape[dim] - p
        a, b = prev.narrow(dim, 0, m), prev.narrow(dim, p, m)
        if workspace is None:
            partial[2 * p] = a + b
        else:
            shape = list(prev.shape)
            shape[dim] = m
            buf = _buffer(workspace, f"{tag}{2 * p}", tuple(shape), prev, prev.dtype)
            partial[2 * p] = torch.add(a, b, out=buf)
        p *= 2
    offset, terms = 0, []
    for size in sorted(partial, reverse=True):
        if width & size:
            terms.append(partial[size].narrow(dim, offset, n_out))
            offset += size
    if out is None:
        out = terms[0].clone() if len(terms) == 1 else terms[0] + terms[1]
    elif len(terms) == 1:
        out.copy_(terms[0])
    else:
        torch.add(terms[0], terms[1], out=out)
    for term in terms[2:]:
        out += term
    return out


def _box_mean(maps: Tensor, win_size: int) -> Tensor:
    """Mean over every ``w x w`` window lying wholly inside the image (no padding).

    The uniform window is separable: window sums along W, then along H (:func:`_window_sum`).
    On CPU this is several times faster than ``F.avg_pool2d`` and exact to float64 rounding.
    """
    rows = _window_sum(maps, -1, win_size)  # (n, c, H, w_out)
    return _window_sum(rows, -2, win_size).div_(win_size * win_size)  # (n, c, h_out, w_out)


def _ssim_chunk(
    preds: Tensor, target: Tensor, data_range: float, win_size: int, dtype: torch.dtype
) -> Tensor:
    x = preds.to(dtype)  # (n, 3, H, W)
    y = target.to(dtype)
    n = x.shape[0]
    # One pool over the five maps at once: x, y, x², y², xy.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (n, 15, H, W)
    pooled = _box_mean(maps, win_size)  # (n, 15, H-w+1, W-w+1)
    ux, uy, uxx, uyy, uxy = pooled.chunk(5, dim=1)  # each (n, 3, h, w)
    n_px = win_size * win_size
    cov_norm = n_px / (n_px - 1)  # sample covariance, as scikit-image's default
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    ux_uy = ux * uy
    sq_means = ux * ux + uy * uy
    # vx + vy = cov_norm (uxx + uyy - ux² - uy²), vxy = cov_norm (uxy - ux uy)
    numerator = (2 * ux_uy + c1) * (2 * cov_norm * (uxy - ux_uy) + c2)
    denominator = (sq_means + c1) * (cov_norm * (uxx + uyy - sq_means) + c2)
    ssim_map = numerator / denominator  # (n, 3, h, w)
    return ssim_map.reshape(n, 3, -1).mean(dim=2, dtype=torch.float64).mean(dim=1)  # (n,)


def structural_similarity(
    preds: Tensor,
    target: Tensor,
    data_range: float = 1.0,
    win_size: int = 7,
    reduction: Reduction = "mean",
    precision: Precision = "auto",
) -> Tensor:
    """Structural similarity per image pair, exactly as scikit-image's default SSIM.

    Per channel, with window means ``u``, sample (co)variances ``v`` over a uniform
    ``w x w`` window (``w = win_size = 7``, ``v = w²/(w²-1) * (E[ab] - E[a]E[b])``),
    ``C1 = (0.01 R)^2`` and ``C2 = (0.03 R)^2``::

        S = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2))

    averaged over the valid windows (borders of ``(w-1)/2`` px cropped), then over the three
    channels. This is ``structural_similarity(a, b, win_size=7, channel_axis=-1,
    data_range=1.0)`` of scikit-image (``gaussian_weights=False``, ``K1=0.01``, ``K2=0.03``).

    Args:
        preds: generated images ``(N, 3, H, W)`` in ``[0, 1]``, ``H, W >= win_size``.
        target: reference images, same shape.
        data_range: ``R``, the span of possible pixel values.
        win_size: odd side of the uniform window.
        reduction: ``"mean"`` over items or ``"none"`` for the ``(N,)`` per-item values.
        precision: ``"auto"`` (default: the inputs' float type, as scikit-image does for the
            same arrays), ``"float64"`` (what scikit-image does for the published uint8
            images; equal to it within 1e-10) or ``"float32"`` (about 2x faster on CPU, within
            ~1e-6 of float64).

    Returns:
        A float64 scalar, or a float64 ``(N,)`` tensor.
    """
    return _reduce(_ssim_update(preds, target, data_range, win_size, precision), reduction)
