"""FREEDOM: parity with a dense re-implementation of MMRec's model, graphs, pruning, e2e."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.graph import to_sparse
from mmpc.recsys.models.freedom import FREEDOM, bpr_loss

from .conftest import make_mmrec_folder
from .test_bm3 import I, U, dense_adj, fit_and_test, popularity_recall, tiny_data
from .test_graph import brute_force_knn


def mmrec_forward(model: FREEDOM, mm_adj: torch.Tensor, adj: torch.Tensor):
    h = model.item_embedding.weight
    for _ in range(model.n_mm_layers):
        h = mm_adj @ h
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
    layers = [ego]
    for _ in range(model.n_ui_layers):
        ego = adj @ ego
        layers.append(ego)
    u, i = torch.split(torch.stack(layers, dim=1).mean(dim=1), [U, I])
    return u, i + h


def mmrec_bpr(u, p, n):
    return -torch.mean(F.logsigmoid((u * p).sum(1) - (u * n).sum(1)))


def test_item_graph_is_mmrec_mix_of_knn_graphs() -> None:
    data = tiny_data()
    model = FREEDOM(U, I, {"text": 5, "image": 6}, embedding_dim=8, knn_k=3)
    model.setup_data(data)
    _, image = brute_force_knn(data.features["image"], 3)
    _, text = brute_force_knn(data.features["text"], 3)
    ours = to_sparse(model.mm_indices, model.mm_values, I).to_dense()
    torch.testing.assert_close(ours, 0.1 * image + 0.9 * text)
    text_only = FREEDOM(U, I, {"text": 5}, embedding_dim=8, knn_k=3)
    text_only.setup_data(data)
    torch.testing.assert_close(
        to_sparse(text_only.mm_indices, text_only.mm_values, I).to_dense(), text
    )


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_loss_and_gradients_match_mmrec_reference(dropout: float) -> None:
    torch.manual_seed(0)
    data = tiny_data()
    model = FREEDOM(
        U, I, {"text": 5, "image": 6}, embedding_dim=8, knn_k=3, dropout=dropout, reg_weight=0.3
    )
    model.setup_data(data)
    model.on_train_epoch_start(0)
    users = torch.tensor([0, 3, 3, 8, 1])
    pos, neg = torch.tensor([2, 2, 5, 0, 6]), torch.tensor([1, 4, 1, 3, 1])
    ours = model.loss(users, pos, neg)
    params = list(model.parameters())
    grads = torch.autograd.grad(ours["loss"], params)
    mm_adj = to_sparse(model.mm_indices, model.mm_values, I).to_dense()
    pruned = to_sparse(model.pruned_indices, model.pruned_values, U + I).to_dense()
    if dropout == 0.0:
        torch.testing.assert_close(pruned, dense_adj(data))
    u_all, i_all = mmrec_forward(model, mm_adj, pruned)
    ref = mmrec_bpr(u_all[users], i_all[pos], i_all[neg])
    for m in ("text", "image"):
        feats = model.projections[m](model.table(m))
        ref = ref + model.reg_weight * mmrec_bpr(u_all[users], feats[pos], feats[neg])
    ref_grads = torch.autograd.grad(ref, params)
    torch.testing.assert_close(ours["loss"], ref)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, msg=name)
    named = dict(zip([n for n, _ in model.named_parameters()], grads, strict=True))
    touched = set(pos.tolist()) | set(neg.tolist())
    assert (named["text_table"].abs().sum(1) > 0).tolist() == [i in touched for i in range(I)]
    assert named["user_embedding.weight"].abs().sum() > 0
    assert named["projections.image.weight"].abs().sum() > 0


def test_pruning_draws_follow_the_run_seed() -> None:
    """seed=None takes the seed_everything seed: other run seeds, other graphs; an int pins it."""

    def first_graph(run_seed: int, seed: int | None = None) -> torch.Tensor:
        torch.manual_seed(run_seed)
        model = FREEDOM(U, I, {"text": 5, "image": 6}, embedding_dim=8, knn_k=3, dropout=0.5,
                        seed=seed)  # fmt: skip
        model.setup_data(tiny_data(1))
        torch.rand(7)  # later draws from the global RNG do not change the pruning seed
        model.on_train_epoch_start(0)
        return model.pruned_indices.clone()

    assert torch.equal(first_graph(5), first_graph(5))
    assert not torch.equal(first_graph(5), first_graph(6))
    assert torch.equal(first_graph(5), first_graph(6, seed=5))  # run seed 5 == pinned seed 5
    assert torch.equal(first_graph(5, seed=9), first_graph(6, seed=9))


def test_pruned_graph_resampled_per_epoch_and_full_graph_at_eval() -> None:
    torch.manual_seed(1)
    data = tiny_data(1)
    model = FREEDOM(U, I, {"text": 5, "image": 6}, embedding_dim=8, knn_k=3, dropout=0.5)
    model.setup_data(data)
    model.on_train_epoch_start(0)
    first = model.pruned_indices.clone()
    num_edges = model.edges_indices.shape[1]
    assert first.shape[1] == 2 * int(num_edges * 0.5)
    model.on_train_epoch_start(1)
    assert not torch.equal(first, model.pruned_indices)
    model.on_train_epoch_start(0)
    assert torch.equal(first, model.pruned_indices)  # (seed, epoch) fixes the draw
    users = torch.tensor([4, 0, 2])
    with torch.no_grad():
        mm_adj = to_sparse(model.mm_indices, model.mm_values, I).to_dense()
        u, i = mmrec_forward(model, mm_adj, dense_adj(data))
        ref = u[users] @ i.T
        torch.testing.assert_close(model.full_scores(users), ref)
        model.prepare_eval()
        torch.testing.assert_close(model.full_scores(users), ref)
        model.end_eval()


def test_input_checks() -> None:
    model = FREEDOM(U, I, {"text": 5}, embedding_dim=8)
    with pytest.raises(RuntimeError, match="setup_data"):
        model.on_train_epoch_start(0)
    with pytest.raises(ValueError, match="needs sampled negatives"):
        model.loss(torch.tensor([0]), torch.tensor([1]), None)
    with pytest.raises(ValueError, match="feat_embed_dim"):
        FREEDOM(U, I, {"text": 5}, embedding_dim=8, feat_embed_dim=4)
    with pytest.raises(ValueError, match="needs text and/or image"):
        FREEDOM(U, I, {})
    u, p, n = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    ref = -torch.log(torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
    torch.testing.assert_close(bpr_loss(u, p, n), ref)


@pytest.mark.slow
def test_freedom_beats_popularity(tmp_path: Path) -> None:
    root = make_mmrec_folder(tmp_path / "data", users=300, items=150, per_user=14, seed=1,
                             popularity=1.0)  # fmt: skip
    popularity = popularity_recall(InteractionDataModule(root))
    recall = fit_and_test(FREEDOM, root, tmp_path / "run", epochs=10)
    print(f"FREEDOM recall@20={recall:.3f} popularity={popularity:.3f}")
    assert recall > popularity + 0.1
