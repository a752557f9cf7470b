"""Pixel image metrics as torchmetrics classes: ``PSNR``, ``SSIM``, ``MSE``.

Each class only accumulates state; the maths lives in :mod:`mmpc.metrics.functional.image`.
Inputs are float tensors ``(N, 3, H, W)`` in ``[0, 1]`` (see
:func:`mmpc.metrics.functional.image_io.prepare_image_pair` to build them from files).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from mmpc.metrics.functional.image import (
    Precision,
    Reduction,
    _mse_update,
    _psnr_compute,
    _ssim_update,
    check_precision,
)


class PerItemImageMetric(Metric):
    """Base for metrics that give one value per image pair and average them.

    State: ``total`` (sum of the scored items' values, float64), ``count`` (items scored),
    ``skipped`` (items the metric declines to score, e.g. LPIPS below 64 px) and, with
    ``reduction="none"``, the list of per-item ``values``. Skipped items appear as ``NaN`` in the
    per-item values (so values stay aligned with items) and are left out of the mean.

    Subclasses implement :meth:`_per_item` returning an ``(N,)`` tensor (``NaN`` = skipped).
    """

    full_state_update: ClassVar[bool] = False
    label: str = ""

    total: Tensor
    count: Tensor
    skipped: Tensor
    values: list[Tensor]

    def __init__(self, reduction: Reduction = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("skipped", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if reduction == "none":
            self.add_state("values", [], dist_reduce_fx="cat")

    @abstractmethod
    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        """(N,) values of the metric for a batch of pairs."""

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Score a batch of pairs ``(N, 3, H, W)`` and add the values to the state."""
        values = self._per_item(preds, target).to(torch.float64)  # (N,)
        scored = ~values.isnan()
        self.total += values[scored].sum()
        self.count += scored.sum()
        self.skipped += (~scored).sum()
        if self.reduction == "none":
            self.values.append(values)

    def compute(self) -> Tensor:
        """Mean over scored items (``NaN`` if none), or all per-item values for ``"none"``."""
        if self.reduction == "none":
            if not self.values:
                return torch.empty(0, dtype=torch.float64, device=self.total.device)
            return dim_zero_cat(self.values)
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.total.device)
        return self.total / self.count


class MSE(PerItemImageMetric):
    """Mean squared error per pair, ``1/(3HW) sum (x - y)^2``, as scikit-image; lower is better.

    Example:
        >>> metric = MSE()
        >>> metric.update(torch.zeros(2, 3, 8, 8), torch.full((2, 3, 8, 8), 0.5))
        >>> float(metric.compute())
        0.25
    """

    is_differentiable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = False
    label = "MSE"

    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        return _mse_update(preds, target)


class PSNR(PerItemImageMetric):
    """Peak signal-to-noise ratio per pair, ``10 log10(R^2 / MSE)`` dB, ``R = data_range = 1``.

    Equal to scikit-image's ``peak_signal_noise_ratio(data_range=1)``. Identical pairs score
    ``+inf`` as in scikit-image, so the mean of a set that contains one is ``+inf`` (the
    reference's value). Pass ``max_db`` to cap each item's value, e.g. ``PSNR(max_db=100.0)``,
    when a finite mean and standard deviation are needed.

    Args:
        data_range: ``R``, the span of pixel values.
        max_db: optional per-item cap in dB.
        reduction: ``"mean"`` or ``"none"`` (per-item values).
    """

    is_differentiable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True
    label = "PSNR"

    def __init__(
        self,
        data_range: float = 1.0,
        max_db: float | None = None,
        reduction: Reduction = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, **kwargs)
        self.data_range = data_range
        self.max_db = max_db

    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        return _psnr_compute(_mse_update(preds, target), self.data_range, self.max_db)


class SSIM(PerItemImageMetric):
    """Structural similarity per pair, exactly scikit-image's default SSIM.

    ``S = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2))`` over a uniform 7 x 7
    window with sample covariances, ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``, averaged over the
    valid area and the three channels (see
    :func:`mmpc.metrics.functional.image.structural_similarity`). Needs images of at least
    ``win_size`` pixels per side.

    Args:
        data_range: ``R``, the span of pixel values.
        win_size: odd side of the window (7, as the protocol).
        reduction: ``"mean"`` or ``"none"`` (per-item values).
        precision: ``"auto"`` (default: the inputs' float type, as scikit-image and
            torchmetrics), ``"float64"`` (as the published uint8 path) or ``"float32"``
            (about 2x faster on CPU, within ~1e-6 of float64).
    """

    is_differentiable: ClassVar[bool] = True
    higher_is_better: ClassVar[bool] = True
    label = "SSIM"

    def __init__(
        self,
        data_range: float = 1.0,
        win_size: int = 7,
        reduction: Reduction = "mean",
        precision: Precision = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, **kwargs)
        check_precision(precision)
        self.data_range = data_range
        self.win_size = win_size
        self.precision = precision

    def _per_item(self, preds: Tensor, target: Tensor) -> Tensor:
        return _ssim_update(preds, target, self.data_range, self.win_size, self.precision)
