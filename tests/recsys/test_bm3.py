"""BM3: parity with a literal dense re-implementation of MMRec's loss, gradients, tables, e2e."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.models.bm3 import BM3, project_rows, unique_dropout
from mmpc.recsys.module import RecommenderModule
from mmpc.recsys.types import CSR, InteractionData

from .conftest import make_mmrec_folder

U, I = 9, 7  # noqa: E741  (users, items as in the papers)


def tiny_data(seed: int = 0) -> InteractionData:
    gen = torch.Generator().manual_seed(seed)
    users = torch.randint(0, U, (40,), generator=gen)
    items = torch.randint(0, I, (40,), generator=gen)
    train = CSR.from_pairs(users, items, U, I)
    features = {"text": torch.randn(I, 5, generator=gen), "image": torch.rand(I, 6, generator=gen)}
    return InteractionData(U, I, {"train": train, "valid": train, "test": train}, features)


def dense_adj(data: InteractionData) -> torch.Tensor:
    """MMRec's get_norm_adj_mat, densely: A = [[0, R], [Rᵀ, 0]] (A > 0), D^-1/2 A D^-1/2."""
    r = torch.zeros(U, I)
    edges = data.train_edge_index()
    r[edges[0], edges[1]] = 1.0
    a = torch.zeros(U + I, U + I)
    a[:U, U:], a[U:, :U] = r, r.T
    d = (a.sum(1) + 1e-7).pow(-0.5)
    return d[:, None] * a * d[None, :]


def mmrec_forward(model: BM3, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
    layers = [ego]
    for _ in range(model.n_layers):
        ego = adj @ ego
        layers.append(ego)
    mean = torch.stack(layers, dim=1).mean(dim=1)
    u, i = torch.split(mean, [U, I])
    return u, i + model.item_embedding.weight


def mmrec_loss(model: BM3, adj: torch.Tensor, users, items) -> torch.Tensor:
    """MMRec's BM3.calculate_loss with dropout 0 (targets = detached online embeddings)."""
    u_ori, i_ori = mmrec_forward(model, adj)
    feats = {m: model.projections[m](model.table(m)) for m in ("text", "image")}
    u_target, i_target = u_ori.detach()[users], i_ori.detach()[items]
    u_online, i_online = model.predictor(u_ori)[users], model.predictor(i_ori)[items]
    modal = 0.0
    for m in ("text", "image"):
        target = feats[m].detach()[items]
        online = model.predictor(feats[m])[items]
        modal = modal + 1 - F.cosine_similarity(online, i_target, dim=-1).mean()
        modal = modal + 1 - F.cosine_similarity(online, target, dim=-1).mean()
    loss_ui = 1 - F.cosine_similarity(u_online, i_target, dim=-1).mean()
    loss_iu = 1 - F.cosine_similarity(i_online, u_target, dim=-1).mean()
    reg = (torch.norm(u_ori) + torch.norm(i_ori)) / I
    return loss_ui + loss_iu + model.reg_weight * reg + model.cl_weight * modal


@pytest.mark.parametrize("n_layers", [1, 2])
def test_loss_and_gradients_match_mmrec_reference(n_layers: int) -> None:
    torch.manual_seed(0)
    data = tiny_data()
    model = BM3(U, I, {"text": 5, "image": 6}, embedding_dim=8, n_layers=n_layers, dropout=0.0)
    model.setup_data(data)
    users = torch.tensor([0, 3, 3, 8, 1])
    items = torch.tensor([2, 2, 5, 0, 6])
    ours = model.loss(users, items, None)
    grads = torch.autograd.grad(ours["loss"], list(model.parameters()))
    ref = mmrec_loss(model, dense_adj(data), users, items)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(ours["loss"], ref)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, msg=name)
    # the tables learn only through the batch's items; every parameter gets a gradient
    table_grad = dict(zip([n for n, _ in model.named_parameters()], grads, strict=True))
    rows = table_grad["image_table"].abs().sum(1) > 0
    assert rows.tolist() == [i in {0, 2, 5, 6} for i in range(I)]
    assert all(g.abs().sum() > 0 for g in grads)


def test_scores_match_reference_and_cache() -> None:
    torch.manual_seed(1)
    data = tiny_data(1)
    model = BM3(U, I, {"text": 5, "image": 6}, embedding_dim=8)
    model.setup_data(data)
    users = torch.tensor([4, 0, 2])
    with torch.no_grad():
        u, i = mmrec_forward(model, dense_adj(data))
        ref = model.predictor(u)[users] @ model.predictor(i).T
        torch.testing.assert_close(model.full_scores(users), ref)
        model.prepare_eval()
        torch.testing.assert_close(model.full_scores(users), ref)
        model.end_eval()


def test_unique_dropout_shares_masks_and_projection_paths_agree() -> None:
    torch.manual_seed(2)
    table = torch.rand(6, 50) + 0.5
    rows = torch.tensor([1, 4, 1, 1, 4])
    out = unique_dropout(table, rows, 0.5)
    torch.testing.assert_close(out[0], out[2])
    torch.testing.assert_close(out[1], out[4])
    kept = out != 0
    torch.testing.assert_close(out[kept], (table[rows] * 2)[kept])
    assert 0.3 < kept.float().mean() < 0.7
    proj = torch.nn.Linear(50, 3)
    for few in (torch.tensor([2]), torch.tensor([0, 1, 2, 3, 5])):  # gather path, full path
        torch.testing.assert_close(project_rows(proj, table, few), proj(table)[few])


def test_tables_loaded_once_and_frozen_option() -> None:
    data = tiny_data()
    model = BM3(U, I, {"text": 5, "image": 6}, embedding_dim=8)
    assert model.uses_negatives is False
    model.setup_data(data)
    torch.testing.assert_close(model.table("image"), data.features["image"])
    with torch.no_grad():
        model.table("image").add_(1.0)
    model.setup_data(data)  # e.g. test after fit: trained tables are kept
    torch.testing.assert_close(model.table("image"), data.features["image"] + 1.0)
    restored = BM3(U, I, {"text": 5, "image": 6}, embedding_dim=8)
    restored.load_state_dict(model.state_dict())
    restored.setup_data(data)  # a model restored from a checkpoint keeps its trained tables
    torch.testing.assert_close(restored.table("image"), data.features["image"] + 1.0)
    frozen = BM3(U, I, {"text": 5}, embedding_dim=8, train_features=False)
    assert "text_table" not in dict(frozen.named_parameters())
    assert "text_table" not in frozen.state_dict()
    with pytest.raises(ValueError, match="BM3: needs text and/or image features"):
        BM3(U, I, {})
    with pytest.raises(RuntimeError, match="setup_data"):
        frozen.full_scores(torch.tensor([0]))


def popularity_recall(dm: InteractionDataModule, k: int = 20) -> float:
    """Recall@k of ranking by train popularity, same masking as the module's test."""
    from mmpc.metrics import RecallAtK
    from mmpc.recsys.module import mask_scores

    data = dm.load()
    users = data.eval_users("test")
    counts = torch.bincount(data.train.indices, minlength=data.num_items).float()
    scores = counts.expand(users.numel(), -1).clone()  # (U, I)
    mask_scores(scores, users, data.train, data.splits["valid"])
    metric = RecallAtK(k=k)
    metric.update(scores, data.splits["test"].dense(users))
    return float(metric.compute()[k])


def fit_and_test(model_cls, root: Path, tmp_path: Path, epochs: int, **kwargs) -> float:
    L.seed_everything(0, verbose=False)
    dm = InteractionDataModule(root, batch_size=256, seed=0)
    model = model_cls(dm.num_users, dm.num_items, dm.feature_dims, embedding_dim=16, **kwargs)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        check_val_every_n_epoch=epochs, default_root_dir=tmp_path,
    )  # fmt: skip
    module = RecommenderModule(model, lr=1e-2)
    trainer.fit(module, datamodule=dm)
    return trainer.test(module, datamodule=dm, verbose=False)[0]["test/recall@20"]


@pytest.mark.slow
def test_bm3_beats_popularity(tmp_path: Path) -> None:
    root = make_mmrec_folder(tmp_path / "data", users=300, items=150, per_user=14, seed=1,
                             popularity=1.0)  # fmt: skip
    recall = fit_and_test(BM3, root, tmp_path / "run", epochs=25)
    popularity = popularity_recall(InteractionDataModule(root))
    print(f"BM3 recall@20={recall:.3f} popularity={popularity:.3f}")
    assert recall > popularity + 0.05
