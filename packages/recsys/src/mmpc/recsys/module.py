"""The one LightningModule that trains and evaluates every recommender core.

Training: BPR batches from :class:`mmpc.recsys.data.InteractionDataModule`, Adam, the model's own
loss. Evaluation: full ranking over all items. For a chunk of users the model returns (B, I)
scores in one product; each user's training items (and, at test time, validation items when
``mask_valid_at_test``) are set to -inf by one ``index_put_`` with CSR indices; the split's items
are the targets of :class:`mmpc.metrics.RecallAtK` / :class:`mmpc.metrics.NDCGAtK` (states reduced
by sum over DDP ranks; evaluation users are sharded by rank). Logged: ``train/loss`` (+ the
model's parts), ``val/recall@K``, ``val/ndcg@K``, ``test/...`` for K in ``ks``.

Model selection follows MMRec: early stopping on ``val/recall@20`` after ``stopping_step``
evaluations without a strictly better value (MMRec's ``stopping_step`` = 20, i.e. Lightning
``patience`` = 21), the best-validation checkpoint is the one tested. ``metrics.json`` in the run's
log folder holds the best validation metrics, the test metrics and the epoch counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import Tensor

from mmpc.metrics import NDCGAtK, RecallAtK
from mmpc.metrics.files import atomic_write_text
from mmpc.metrics.functional.ranking import ndcg_at_k, recall_at_k, top_k_hits
from mmpc.recsys.models.base import Recommender
from mmpc.recsys.types import CSR, InteractionData


def mask_scores(scores: Tensor, users: Tensor, *excluded: CSR) -> Tensor:
    """Set ``scores[b, i] = -inf`` for every item i of ``users[b]`` in each ``excluded`` CSR."""
    for csr in excluded:
        pos, cols = csr.gather(users)
        scores.index_put_((pos, cols), torch.tensor(float("-inf"), device=scores.device))
    return scores


class RecommenderModule(L.LightningModule):
    """Shared training / full-ranking evaluation / logging for a :class:`Recommender`.

    Args:
        model: the recommender core (VBPR, BM3, FREEDOM, ...).
        lr: Adam learning rate (MMRec: 1e-3).
        weight_decay: Adam weight decay (MMRec default 0.0).
        ks: cut-offs of Recall@K and NDCG@K.
        monitor: metric for early stopping and the best checkpoint.
        stopping_step: MMRec's early-stopping step: stop after this many + 1 evaluations
            without a strictly better ``monitor``.
        metrics_file: name of the per-run metrics JSON in the log folder.
    """

    def __init__(
        self,
        model: Recommender,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        ks: Sequence[int] = (5, 10, 20, 50),
        monitor: str = "val/recall@20",
        stopping_step: int = 20,
        metrics_file: str = "metrics.json",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.ks = tuple(int(k) for k in ks)
        self.recall = RecallAtK(k=self.ks)
        self.ndcg = NDCGAtK(k=self.ks)
        self.best_val: dict[str, float] = {}
        self.best_epoch = -1
        self.data: InteractionData | None = None
        self._csr: dict[str, CSR] = {}
        self._mask_valid_at_test = True

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if datamodule is None:
            raise ValueError("RecommenderModule needs an InteractionDataModule (datamodule=...)")
        self.data = datamodule.load()
        datamodule.negatives = self.model.uses_negatives
        self._mask_valid_at_test = bool(getattr(datamodule, "mask_valid_at_test", True))
        self.model.setup_data(self.data)
        self._csr = {}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The fused kernel is the same Adam update rule in one pass; on the 4096-d trainable
        # feature tables of BM3/FREEDOM it cut the optimiser step about 10x (docs/recsys.md).
        return torch.optim.Adam(
            self.model.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            fused=True,
        )

    def configure_callbacks(self) -> list[Callback]:
        monitor = self.hparams.monitor
        callbacks: list[Callback] = [
            EarlyStopping(monitor, mode="max", patience=self.hparams.stopping_step + 1)
        ]
        if self.trainer.checkpoint_callback is not None:  # unless checkpointing is disabled
            callbacks.append(
                ModelCheckpoint(monitor=monitor, mode="max", save_top_k=1, filename="best-{epoch}")
            )
        return callbacks

    def on_train_epoch_start(self) -> None:
        self.model.on_train_epoch_start(self.current_epoch)

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        users, pos = batch[0], batch[1]
        neg = batch[2] if len(batch) > 2 else None
        parts = self.model.loss(users, pos, neg)
        for name, value in parts.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=users.numel())
        return parts["loss"]

    def _split_csr(self, name: str) -> CSR:
        if name not in self._csr or self._csr[name].indptr.device != self.device:
            self._csr[name] = self.data.splits[name].to(self.device)
        return self._csr[name]

    def _eval_start(self) -> None:
        self.recall.reset()
        self.ndcg.reset()
        self.model.prepare_eval()

    def _eval_step(self, users: Tensor, split: str) -> None:
        scores = self.model.full_scores(users).float()  # (B, I)
        excluded = [self._split_csr("train")]
        if split == "test" and self._mask_valid_at_test:
            excluded.append(self._split_csr("valid"))
        mask_scores(scores, users, *excluded)
        target = self._split_csr(split).dense(users)  # (B, I)
        # One topk shared by both metrics: the ranking is most of an evaluation pass.
        hits = top_k_hits(scores, target, max(self.ks))
        self.recall.update(hits)
        self.ndcg.update(hits)

    def _eval_end(self, stage: str) -> dict[str, float]:
        self.model.end_eval()
        values: dict[str, float] = {}
        for name, metric in (("recall", self.recall), ("ndcg", self.ndcg)):
            for k, value in metric.compute().items():
                values[f"{stage}/{name}@{int(k)}"] = float(value)
        self.log_dict(values, sync_dist=False)
        return values

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, users: Tensor, batch_idx: int) -> None:
        self._eval_step(users, "valid")

    def on_validation_epoch_end(self) -> None:
        values = self._eval_end("val")
        if self.trainer.sanity_checking:
            return
        key = self.hparams.monitor
        if not self.best_val or values[key] > self.best_val[key]:
            self.best_val, self.best_epoch = values, self.current_epoch

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, users: Tensor, batch_idx: int) -> None:
        self._eval_step(users, "test")

    def on_test_epoch_end(self) -> None:
        values = self._eval_end("test")
        # Trainer.log_dir broadcasts under DDP: every rank must ask, not only rank 0.
        log_dir = self.trainer.log_dir
        if self.trainer.is_global_zero and log_dir is not None:
            payload = {
                "model": type(self.model).__name__,
                "test": values,
                "best_val": self.best_val,
                "best_epoch": self.best_epoch,
                "epochs_run": self.trainer.current_epoch,
                "mask_valid_at_test": self._mask_valid_at_test,
            }
            atomic_write_text(
                Path(log_dir) / self.hparams.metrics_file,
                json.dumps(payload, indent=2, sort_keys=True),
            )

    @torch.no_grad()
    def per_user_metrics(self, split: str = "test", chunk: int = 1024) -> dict[str, np.ndarray]:
        """Recall@K and NDCG@K of every user with ``split`` items, under the current weights.

        The same full ranking as :meth:`test_step` (training items masked, and validation items
        for ``"test"`` when the datamodule masks them), kept per user instead of averaged, so
        the mean over users equals the logged ``<split>/recall@K`` (e.g. for a paired bootstrap).
        Call it after ``trainer.fit``/``trainer.test`` (the data comes from ``setup``).

        Returns:
            ``{"user": (n,) int64 user index, "recall@K": (n,), "ndcg@K": (n,) for K in ks}``,
            users ascending.
        """
        if self.data is None:
            raise RuntimeError("RecommenderModule.per_user_metrics before setup (fit or test)")
        self.model.eval()
        users = self.data.eval_users(split).to(self.device)
        columns: dict[str, list[np.ndarray]] = {"user": [users.cpu().numpy()]}
        self.model.prepare_eval()
        for start in range(0, users.numel(), chunk):
            batch = users[start : start + chunk]
            scores = self.model.full_scores(batch).float()  # (B, I)
            excluded = [self._split_csr("train")]
            if split == "test" and self._mask_valid_at_test:
                excluded.append(self._split_csr("valid"))
            mask_scores(scores, batch, *excluded)
            target = self._split_csr(split).dense(batch)  # (B, I)
            for name, values in (
                ("recall", recall_at_k(scores, target, self.ks)),
                ("ndcg", ndcg_at_k(scores, target, self.ks)),
            ):
                for k in self.ks:
                    columns.setdefault(f"{name}@{k}", []).append(values[k].cpu().numpy())
        self.model.end_eval()
        return {name: np.concatenate(parts) for name, parts in columns.items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mmpc_best_val"] = {"values": self.best_val, "epoch": self.best_epoch}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        best = checkpoint.get("mmpc_best_val", {})
        self.best_val = dict(best.get("values", {}))
        self.best_epoch = int(best.get("epoch", -1))


def summarize_runs(paths: Sequence[str | Path]) -> dict[str, dict[str, float]]:
    """Mean ± std (sample std, ddof=1; 0 for one run) of every metric over several runs.

    Args:
        paths: ``metrics.json`` files of runs that differ only in the seed.

    Returns:
        ``{"test/recall@20": {"mean": m, "std": s, "n": n}, ...}`` over test and best-val metrics.
    """
    columns: dict[str, list[float]] = {}
    for path in paths:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        for section in ("test", "best_val"):
            for name, value in payload.get(section, {}).items():
                columns.setdefault(name, []).append(float(value))
    out = {}
    for name, values in sorted(columns.items()):
        array = np.asarray(values)
        std = float(array.std(ddof=1)) if array.size > 1 else 0.0
        out[name] = {"mean": float(array.mean()), "std": std, "n": int(array.size)}
    return out
