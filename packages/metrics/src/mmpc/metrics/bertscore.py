"""BERTScore as a torchmetrics class (per-item P/R/F1 states; the backbone injected from config).

Formulas and the parity contract with the ``bert-score`` package are in
:mod:`mmpc.metrics.functional.bertscore`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from mmpc.metrics.functional.bertscore import OUTPUTS, _bert_score_compute, _bert_score_update
from mmpc.metrics.functional.bertscore_backbone import (
    DEFAULT_MODEL,
    BERTScoreBackbone,
    ModelFactory,
    load_backbone,
)

__all__ = ["BERTScore"]


class BERTScore(Metric):
    """BERTScore F1 (or P, R) of generated texts against references, no baseline rescaling.

    ``P = Σ_i w_i max_j <x_i, y_j> / Σ_i w_i``, ``R`` symmetrically over reference tokens,
    ``F1 = 2PR / (P + R)``, with unit-norm token embeddings of layer ``num_layers``.

    The backbone is loaded on first use (or by :meth:`backbone`), never downloaded unless
    ``local_files_only=False``; it is kept outside the module tree, so it is neither moved by
    ``.to()`` nor written into ``state_dict`` (pass ``device`` instead).

    Args:
        model: A Hugging Face id (default ``"roberta-large"``, as the paper), a local folder
            (offline: ``mmpc.metrics.backbones.minilm_path()`` with
            ``num_layers=6``), a callable returning ``(model, tokenizer)`` or a loaded
            :class:`~mmpc.metrics.functional.bertscore_backbone.BERTScoreBackbone`.
        num_layers: Layer used (default: 17 for roberta-large, else the last layer).
        idf: ``False`` (default), ``True`` (idf over all references seen; the texts are kept until
            ``compute``, single process only) or a precomputed ``{token_id: idf}`` mapping.
        batch_size: Texts per forward pass.
        device: Device for a model loaded from an id/folder (default CUDA if available).
        output: ``"f1"`` (default), ``"precision"``, ``"recall"`` or ``"all"`` (a dict).
        reduction: ``"mean"`` (default) or ``"none"`` (per-item float32 (N,)).
        local_files_only: Never download (default).
        kwargs: Passed to :class:`torchmetrics.Metric`.

    Raises:
        MissingWeightsError: On first use, when the backbone's weights are not available.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    prf: list[Tensor]

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelFactory | BERTScoreBackbone = DEFAULT_MODEL,
        num_layers: int | None = None,
        idf: bool | Mapping[int, float] = False,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        output: str = "f1",
        reduction: str = "mean",
        local_files_only: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.model_spec = model
        self.num_layers = num_layers
        self.idf = idf
        self.batch_size = batch_size
        self.model_device = device
        self.output = output
        self.reduction = reduction
        self.local_files_only = local_files_only
        self._backbone: BERTScoreBackbone | None = None
        self._texts: tuple[list[str], list[str]] = ([], [])
        self.add_state("prf", default=[], dist_reduce_fx="cat")

    def backbone(self) -> BERTScoreBackbone:
        """Load the backbone now (raises :class:`MissingWeightsError` if it is not available)."""
        if self._backbone is None:
            self._backbone = load_backbone(
                self.model_spec, self.num_layers, self.model_device, self.local_files_only
            )
        return self._backbone

    def update(self, preds: Sequence[str], target: Sequence[str]) -> None:
        """Score a batch of (generated, reference) pairs (with ``idf=True``: keep the texts)."""
        if self.idf is True:
            preds = [preds] if isinstance(preds, str) else list(preds)
            target = [target] if isinstance(target, str) else list(target)
            if len(preds) != len(target):
                raise ValueError(f"preds has {len(preds)} texts but target has {len(target)}")
            self._texts[0].extend(preds)
            self._texts[1].extend(target)
            return
        self.prf.append(
            _bert_score_update(preds, target, self.backbone(), self.idf, self.batch_size)
        )

    def forward(self, preds: Sequence[str], target: Sequence[str]) -> Any:
        """Batch score plus accumulation (idf off or precomputed only: idf over all references
        is known only at ``compute``)."""
        if self.idf is True:
            raise RuntimeError(
                "BERTScore(idf=True) scores only at compute(): call update() per batch, then "
                "compute()"
            )
        return super().forward(preds, target)

    def compute(self) -> Tensor | dict[str, Tensor]:
        """Mean (or per-item) F1 / P / R over every pair seen."""
        if self.idf is True:
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                raise RuntimeError(
                    "BERTScore(idf=True) needs all references in one process; under DDP pass "
                    "idf=bert_score_idf(all_references, tokenizer) instead"
                )
            prf = _bert_score_update(*self._texts, self.backbone(), True, self.batch_size)
        else:
            prf = dim_zero_cat(self.prf) if self.prf else torch.zeros(0, 3)
        return _bert_score_compute(prf, self.output, self.reduction)

    def reset(self) -> None:
        """Clear the accumulated scores (and kept texts); the loaded backbone stays."""
        super().reset()
        self._texts = ([], [])
