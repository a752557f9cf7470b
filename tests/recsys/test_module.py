from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.models.base import Recommender
from mmpc.recsys.module import RecommenderModule, mask_scores, summarize_runs
from mmpc.recsys.types import CSR, InteractionData


class FixedScores(Recommender):
    """Scores from a fixed random (U, I) table plus one trainable scalar (so Adam has a param)."""

    def __init__(self, num_users: int, num_items: int, feature_dims=None, seed: int = 0) -> None:
        super().__init__(num_users, num_items, feature_dims)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("table", torch.randn(num_users, num_items, generator=gen))
        self.scale = nn.Parameter(torch.ones(()))
        self.prepared = 0

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor | None) -> dict[str, Tensor]:
        diff = self.table[users, pos_items] - self.table[users, neg_items]
        return {"loss": -torch.nn.functional.logsigmoid(self.scale * diff).mean()}

    def prepare_eval(self) -> None:
        self.prepared += 1

    def full_scores(self, users: Tensor) -> Tensor:
        return self.table[users] * self.scale.abs()


def naive_metrics(
    data: InteractionData, scores: Tensor, split: str, masked: list[str], ks=(5, 10, 20, 50)
) -> dict[str, float]:
    """Per-user Python loop: mask, rank, Recall@K / NDCG@K averaged over users with targets."""
    sums = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}
    n = 0
    for u in range(data.num_users):
        target = set(data.splits[split].dense(torch.tensor([u]))[0].nonzero().flatten().tolist())
        if not target:
            continue
        n += 1
        row = scores[u].clone()
        for name in masked:
            for i in data.splits[name].dense(torch.tensor([u]))[0].nonzero().flatten().tolist():
                row[i] = -math.inf
        ranking = torch.argsort(row, descending=True, stable=True).tolist()
        for k in ks:
            hits = [1.0 if i in target else 0.0 for i in ranking[:k]]
            sums[f"recall@{k}"] += sum(hits) / len(target)
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(target))))
            sums[f"ndcg@{k}"] += dcg / idcg
    return {name: value / n for name, value in sums.items()}


def test_mask_scores_matches_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    rows, cols = (
        torch.randint(0, 6, (30,), generator=gen),
        torch.randint(0, 11, (30,), generator=gen),
    )
    csr = CSR.from_pairs(rows, cols, 6, 11)
    users = torch.tensor([5, 2, 2, 0])
    scores = torch.randn(4, 11, generator=gen)
    expected = scores.clone()
    for b, u in enumerate(users.tolist()):
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if r == u:
                expected[b, c] = -math.inf
    torch.testing.assert_close(mask_scores(scores.clone(), users, csr), expected)


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", logger=L.pytorch.loggers.CSVLogger(tmp_path, name="", version=""),
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("mask_valid_at_test", [True, False])
def test_full_ranking_evaluation_matches_naive_loop(
    tiny_root: Path, tmp_path: Path, mask_valid_at_test: bool
) -> None:
    dm = InteractionDataModule(tiny_root, eval_batch_size=7, mask_valid_at_test=mask_valid_at_test)
    model = FixedScores(dm.num_users, dm.num_items)
    module = RecommenderModule(model)
    trainer = _trainer(tmp_path)
    val = trainer.validate(module, datamodule=dm, verbose=False)[0]
    test = trainer.test(module, datamodule=dm, verbose=False)[0]
    data = dm.load()
    ref_val = naive_metrics(data, model.table, "valid", ["train"])
    masked = ["train", "valid"] if mask_valid_at_test else ["train"]
    ref_test = naive_metrics(data, model.table, "test", masked)
    for name in ref_val:
        assert val[f"val/{name}"] == pytest.approx(ref_val[name], abs=1e-6)
        assert test[f"test/{name}"] == pytest.approx(ref_test[name], abs=1e-6)
    assert model.prepared == 2  # once per evaluation pass, not per chunk
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"]["test/recall@20"] == pytest.approx(ref_test["recall@20"], abs=1e-6)
    assert saved["mask_valid_at_test"] is mask_valid_at_test


@pytest.mark.parametrize("mask_valid_at_test", [True, False])
def test_per_user_metrics_are_the_test_pass_per_user(
    tiny_root: Path, tmp_path: Path, mask_valid_at_test: bool
) -> None:
    """Bitwise the per-user values of the full ranking; their mean is the logged test metric."""
    import mmpc.recsys.models as models
    from mmpc.metrics.functional import ndcg_at_k, recall_at_k

    dm = InteractionDataModule(tiny_root, batch_size=256, mask_valid_at_test=mask_valid_at_test)
    module = RecommenderModule(models.VBPR(dm.num_users, dm.num_items, dm.feature_dims))
    trainer = _trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    trainer.fit(module, datamodule=dm)
    test = trainer.test(module, datamodule=dm, verbose=False)[0]
    got = module.per_user_metrics("test", chunk=7)
    data = dm.load()
    users = data.eval_users("test")
    with torch.no_grad():  # the reference: one chunk, the functional metrics, CPU CSRs
        module.model.prepare_eval()
        scores = module.model.full_scores(users).float()
        module.model.end_eval()
    excluded = [data.splits["train"], *([data.splits["valid"]] if mask_valid_at_test else [])]
    mask_scores(scores, users, *excluded)
    target = data.splits["test"].dense(users)
    ref = {
        "recall": recall_at_k(scores, target, module.ks),
        "ndcg": ndcg_at_k(scores, target, module.ks),
    }
    assert got["user"].tolist() == users.tolist()
    for name, values in ref.items():
        for k in module.ks:
            assert np.array_equal(got[f"{name}@{k}"], values[k].numpy(), equal_nan=True)
            mean = float(np.nanmean(got[f"{name}@{k}"]))
            assert mean == pytest.approx(test[f"test/{name}@{k}"], abs=1e-6)
    with pytest.raises(RuntimeError, match="before setup"):
        RecommenderModule(FixedScores(3, 4)).per_user_metrics()


def test_fit_logs_tracks_best_and_stops_early(tiny_root: Path, tmp_path: Path) -> None:
    dm = InteractionDataModule(tiny_root, batch_size=256)
    module = RecommenderModule(FixedScores(dm.num_users, dm.num_items), stopping_step=1)
    trainer = _trainer(tmp_path, max_epochs=30)
    trainer.fit(module, datamodule=dm)
    # Scores only scale: rankings never change, so val/recall@20 never strictly improves after
    # epoch 0 and MMRec's rule (stopping_step + 1 non-improving evaluations) stops at epoch 2.
    assert trainer.current_epoch == 3 and module.best_epoch == 0
    assert set(module.best_val) == {
        f"val/{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20, 50)
    }
    assert "train/loss" in trainer.logged_metrics
    assert module.model.scale.item() != 1.0  # trained
    trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["best_epoch"] == 0 and saved["best_val"] == module.best_val


def test_summarize_runs(tmp_path: Path) -> None:
    paths = []
    for i, value in enumerate([0.1, 0.2, 0.3]):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps({"test": {"test/recall@20": value}, "best_val": {}}))
        paths.append(path)
    out = summarize_runs(paths)["test/recall@20"]
    assert out["mean"] == pytest.approx(0.2) and out["std"] == pytest.approx(0.1) and out["n"] == 3


@pytest.mark.parametrize("name", ["VBPR", "BM3", "FREEDOM"])
def test_models_train_under_bf16_mixed(name: str, tiny_root: Path, tmp_path: Path) -> None:
    """Lightning's bf16 autocast: the sparse graph products stay float32 and backward runs."""
    import mmpc.recsys.models as models

    dm = InteractionDataModule(tiny_root, batch_size=256)
    model = getattr(models, name)(dm.num_users, dm.num_items, dm.feature_dims)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = _trainer(tmp_path, max_epochs=1, precision="bf16-mixed", enable_checkpointing=False)
    trainer.fit(RecommenderModule(model), datamodule=dm)
    assert math.isfinite(trainer.callback_metrics["train/loss"].item())
    assert math.isfinite(trainer.callback_metrics["val/recall@20"].item())
    after = dict(model.named_parameters())
    assert all(p.dtype == torch.float32 for p in after.values())  # master weights stay fp32
    assert any(not torch.equal(before[n], after[n]) for n in before)  # it trained


def test_spmm_under_autocast_matches_float32_product() -> None:
    from mmpc.recsys.graph import spmm

    indices = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    adj = torch.sparse_coo_tensor(indices, torch.rand(4), (3, 3)).coalesce()
    dense = torch.rand(3, 5, requires_grad=True)
    expected = adj.to_dense() @ dense
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = spmm(adj, dense)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    out.sum().backward()  # the plain torch.sparse.mm fails here under autocast
    torch.testing.assert_close(dense.grad, adj.to_dense().sum(0)[:, None].expand(3, 5))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["VBPR", "BM3", "FREEDOM"])
def test_models_train_on_gpu(name: str, tiny_root: Path, tmp_path: Path) -> None:
    """A few epochs of each model on the GPU; prints the per-epoch wall time."""
    import time

    import mmpc.recsys.models as models

    dm = InteractionDataModule(tiny_root, batch_size=256)
    model = getattr(models, name)(dm.num_users, dm.num_items, dm.feature_dims)
    times: list[float] = []

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_validation_epoch_end(self, trainer, module) -> None:
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    trainer = L.Trainer(
        accelerator="gpu", devices=1, max_epochs=3, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[Timer()], default_root_dir=tmp_path,
    )  # fmt: skip
    module = RecommenderModule(model)
    trainer.fit(module, datamodule=dm)
    print(f"{name}: s/epoch (train + validation) on {torch.cuda.get_device_name()}: {times}")
    assert len(times) == 3 and math.isfinite(trainer.callback_metrics["train/loss"].item())
    assert next(model.parameters()).is_cuda
