"""Recall@K / NDCG@K: a hand-computed case, parity with PyG and scikit-learn, chunked updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score
from torch.testing import assert_close
from torch_geometric.metrics import LinkPredNDCG, LinkPredRecall

from mmpc.metrics import NDCGAtK, RecallAtK
from mmpc.metrics.functional import ndcg_at_k, recall_at_k
from mmpc.metrics.functional.ranking import top_k_hits

KS = (1, 5, 10, 20, 50)


def _random_case(seed: int, users: int = 64, items: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    preds = torch.rand(users, items, generator=g)
    target = torch.rand(users, items, generator=g) < 0.05
    target[:3] = False  # users without held-out items
    target[3, :80] = True  # a user with more held-out items than the largest K
    train = (torch.rand(users, items, generator=g) < 0.1) & ~target
    preds[train] = -math.inf  # training items masked by the caller
    return preds, target


def test_hand_computed_case() -> None:
    # Ranking of user 0: items 0, 2, 4, 3, 1 with relevance 1, 0, 1, 1, 0 (3 held out).
    preds = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    target = torch.tensor([[1, 0, 0, 1, 1], [0, 0, 0, 0, 0]])
    recall = recall_at_k(preds, target, k=[1, 3, 5])
    ndcg = ndcg_at_k(preds, target, k=[1, 3, 5])
    idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    expected_recall = {1: 1 / 3, 3: 2 / 3, 5: 1.0}
    expected_ndcg = {1: 1.0, 3: (1 + 1 / 2) / idcg3, 5: (1 + 1 / 2 + 1 / math.log2(5)) / idcg3}
    for k in (1, 3, 5):
        assert recall[k][0].item() == pytest.approx(expected_recall[k])
        assert ndcg[k][0].item() == pytest.approx(expected_ndcg[k])
        assert math.isnan(recall[k][1].item()) and math.isnan(ndcg[k][1].item())
    # MMRec's recall divides by all held-out items, even when more than K.
    many = recall_at_k(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[1, 1, 1, 1]]), k=2)
    assert_close(many, torch.tensor([0.5], dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_pyg(seed: int) -> None:
    preds, target = _random_case(seed)
    ours_recall, ours_ndcg = RecallAtK(k=KS), NDCGAtK(k=KS)
    theirs_recall = {k: LinkPredRecall(k) for k in KS}
    theirs_ndcg = {k: LinkPredNDCG(k) for k in KS}
    for chunk in range(0, preds.shape[0], 20):  # chunks of users, several updates
        p, t = preds[chunk : chunk + 20], target[chunk : chunk + 20]
        ours_recall.update(p, t)
        ours_ndcg.update(p, t)
        top = p.topk(max(KS), dim=1).indices
        label_index = t.nonzero().t()
        for k in KS:
            theirs_recall[k].update(top, label_index)
            theirs_ndcg[k].update(top, label_index)
    got_recall, got_ndcg = ours_recall.compute(), ours_ndcg.compute()
    for k in KS:
        assert_close(got_recall[k].float(), theirs_recall[k].compute(), rtol=1e-6, atol=1e-7)
        assert_close(got_ndcg[k].float(), theirs_ndcg[k].compute(), rtol=1e-6, atol=1e-7)


def test_parity_with_sklearn_ndcg() -> None:
    preds, target = _random_case(2, users=40, items=120)
    valid = target.any(dim=1)
    per_user = ndcg_at_k(preds, target, k=KS)
    scores = preds.clone()
    scores[torch.isinf(scores)] = -1e6  # sklearn wants finite scores; order is unchanged
    for k in KS:
        expected = [
            ndcg_score(target[u : u + 1].numpy().astype(np.float64), scores[u : u + 1].numpy(), k=k)
            for u in torch.nonzero(valid).flatten().tolist()
        ]
        assert_close(per_user[k][valid], torch.tensor(expected, dtype=torch.float64))
        assert torch.isnan(per_user[k][~valid]).all()


def test_functional_matches_class_and_reduction_none() -> None:
    preds, target = _random_case(3)
    valid = target.any(dim=1)
    per_user = recall_at_k(preds, target, k=KS)
    metric = RecallAtK(k=KS, reduction="none")
    metric.update(preds[:30], target[:30])
    metric.update(preds[30:], target[30:])
    got = metric.compute()
    mean_metric = RecallAtK(k=KS)
    mean_metric.update(preds, target)
    means = mean_metric.compute()
    for k in KS:
        assert_close(got[k], per_user[k][valid])
        assert_close(means[k], per_user[k].nanmean())


def test_shared_top_k_hits_equal_separate_updates() -> None:
    preds, target = _random_case(4)
    recall, ndcg = RecallAtK(k=KS), NDCGAtK(k=KS)
    hits = top_k_hits(preds, target, max_k=max(KS))  # one topk for both metrics
    recall.update(hits)
    ndcg.update(hits)
    separate_recall, separate_ndcg = RecallAtK(k=KS), NDCGAtK(k=KS)
    separate_recall.update(preds, target)
    separate_ndcg.update(preds, target)
    for k in KS:
        assert_close(recall.compute()[k], separate_recall.compute()[k])
        assert_close(ndcg.compute()[k], separate_ndcg.compute()[k])
    with pytest.raises(ValueError, match="largest K"):
        RecallAtK(k=KS).update(top_k_hits(preds, target, max_k=10))
    with pytest.raises(ValueError, match="not both"):
        RecallAtK(k=KS).update(hits, target)


def test_k_larger_than_items_and_single_k() -> None:
    preds = torch.tensor([[0.3, 0.2, 0.1]])
    target = torch.tensor([[False, False, True]])
    assert_close(recall_at_k(preds, target, k=50), torch.tensor([1.0], dtype=torch.float64))
    assert_close(ndcg_at_k(preds, target, k=50), torch.tensor([0.5], dtype=torch.float64))


def test_no_valid_users_gives_nan_and_bad_input_raises() -> None:
    metric = NDCGAtK(k=5)
    metric.update(torch.rand(2, 10), torch.zeros(2, 10, dtype=torch.bool))
    assert math.isnan(metric.compute()[5].item())
    with pytest.raises(ValueError, match="users, items"):
        recall_at_k(torch.rand(3), torch.ones(3, dtype=torch.bool), k=1)
    with pytest.raises(ValueError, match="NaN"):
        recall_at_k(
            torch.tensor([[0.3, 0.2, 0.9], [0.5, 0.1, math.nan]]), torch.ones(2, 3).bool(), k=1
        )
    with pytest.raises(ValueError, match="positive int"):
        RecallAtK(k=(5, 0))
    with pytest.raises(ValueError, match="0/1"):
        ndcg_at_k(torch.rand(1, 3), torch.tensor([[0.0, 0.5, 1.0]]), k=1)
