from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from mmpc.metrics import RecallAtK
from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.models import VBPR
from mmpc.recsys.module import RecommenderModule, mask_scores

from .conftest import make_mmrec_folder


def test_loss_hand_checked() -> None:
    model = VBPR(num_users=1, num_items=2, feature_dims={"text": 1, "image": 1}, embedding_dim=1,
                 reg_weight=0.5).double()  # fmt: skip
    with torch.no_grad():
        model.user_embedding.copy_(torch.tensor([[1.0, 2.0]]))
        model.item_embedding.copy_(torch.tensor([[0.5], [-1.0]]))
        model.item_linear.weight.copy_(torch.tensor([[1.0, -1.0]]))  # text - image
        model.item_linear.bias.fill_(0.25)
    model.raw_features = torch.tensor(
        [[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64
    )  # [text, image]
    out = model.loss(torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([1, 1]))
    # item 0: [0.5, 2 - 1 + 0.25] = [0.5, 1.25] -> score 0.5 + 2.5 = 3.0
    # item 1: [-1, 0 - 3 + 0.25] = [-1, -2.75] -> score -1 - 5.5 = -6.5
    bpr = -math.log(1e-10 + 1 / (1 + math.exp(-9.5)))
    norm_u = math.sqrt(2 * (1 + 4))
    norm_pos = math.sqrt(2 * (0.25 + 1.5625))
    norm_neg = math.sqrt(2 * (1 + 7.5625))
    reg = (norm_u + norm_pos + norm_neg) / 2
    assert out["bpr"].item() == pytest.approx(bpr, rel=1e-6)
    assert out["reg"].item() == pytest.approx(reg, rel=1e-6)
    assert out["loss"].item() == pytest.approx(bpr + 0.5 * reg, rel=1e-6)
    expected = torch.tensor([[3.0, -6.5]], dtype=torch.float64)
    torch.testing.assert_close(model.full_scores(torch.tensor([0])), expected)


def test_batch_projection_equals_mmrec_all_items_projection() -> None:
    torch.manual_seed(0)
    model = VBPR(5, 9, {"text": 4, "image": 6}, embedding_dim=3, reg_weight=1e-2)
    model.raw_features = torch.randn(9, 10)
    users, pos, neg = (
        torch.tensor([0, 1, 4, 4]),
        torch.tensor([2, 2, 7, 0]),
        torch.tensor([3, 8, 2, 1]),
    )
    ours = model.loss(users, pos, neg)["loss"]
    grads = torch.autograd.grad(ours, list(model.parameters()))
    # MMRec: project ALL items, then index
    items = torch.cat([model.item_embedding, model.item_linear(model.raw_features)], dim=1)
    u = model.user_embedding[users]
    p, n = items[pos], items[neg]
    bpr = -torch.log(1e-10 + torch.sigmoid((u * p).sum(1) - (u * n).sum(1))).mean()
    reg = (u.norm() + p.norm() + n.norm()) / users.numel()
    ref = bpr + 1e-2 * reg
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(ours, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_text_then_image_order_and_missing_features() -> None:
    with pytest.raises(ValueError, match="VBPR needs item features"):
        VBPR(3, 4, {})
    model = VBPR(3, 4, {"image": 2, "text": 5})
    assert model.modalities == ["text", "image"] and model.item_linear.in_features == 7


def _fit_and_test(root: Path, tmp_path: Path, epochs: int) -> tuple[float, InteractionDataModule]:
    L.seed_everything(0, verbose=False)
    dm = InteractionDataModule(root, batch_size=128, seed=0)
    model = VBPR(dm.num_users, dm.num_items, dm.feature_dims, embedding_dim=16)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        check_val_every_n_epoch=epochs, default_root_dir=tmp_path,
    )  # fmt: skip
    module = RecommenderModule(model, lr=1e-2)
    trainer.fit(module, datamodule=dm)
    out = trainer.test(module, datamodule=dm, verbose=False)[0]
    return out["test/recall@20"], dm


def _popularity_recall(dm: InteractionDataModule) -> float:
    data = dm.load()
    users = data.eval_users("test")
    scores = data.train.degrees().new_zeros(data.num_items).float()
    scores += torch.bincount(data.train.indices, minlength=data.num_items).float()
    scores = scores.expand(users.numel(), -1).clone()  # (U, I)
    mask_scores(scores, users, data.train, data.splits["valid"])
    metric = RecallAtK(k=20)
    metric.update(scores, data.splits["test"].dense(users))
    return float(metric.compute()[20])


def test_vbpr_beats_popularity_and_uses_feature_signal(tmp_path: Path) -> None:
    # Few train interactions per user over many items: IDs alone generalise poorly, features
    # (noisy maps of the item factors that drive the choices) carry the signal.
    root = make_mmrec_folder(tmp_path / "data", users=300, items=300, per_user=7, seed=1,
                             popularity=1.0)  # fmt: skip
    real, dm = _fit_and_test(root, tmp_path / "real", epochs=10)
    popularity = _popularity_recall(dm)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    (shuffled / "tiny.inter").write_text((root / "tiny.inter").read_text())
    perm = np.random.default_rng(0).permutation(300)
    for name in ("text_feat.npy", "image_feat.npy"):
        np.save(shuffled / name, np.load(root / name)[perm])
    fake, _ = _fit_and_test(shuffled, tmp_path / "fake", epochs=10)
    print(f"recall@20 real={real:.3f} shuffled={fake:.3f} popularity={popularity:.3f}")
    assert real > popularity + 0.1
    assert real > fake + 0.1
