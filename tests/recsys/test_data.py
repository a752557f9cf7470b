from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmpc.recsys.data import BPRBatches, InteractionDataModule, sample_negatives
from mmpc.recsys.types import CSR


def test_mmrec_metadata_before_load(tiny_root: Path) -> None:
    dm = InteractionDataModule(tiny_root)
    assert (dm.num_users, dm.num_items) == (120, 80)
    assert dm.feature_dims == {"text": 16, "image": 24}
    assert dm.data is None
    frame = pd.read_csv(tiny_root / "tiny.inter", sep="\t")
    data = dm.load()
    for code, split in enumerate(("train", "valid", "test")):
        part = frame[frame.x_label == code]
        csr = data.splits[split]
        assert csr.nnz == len(part)
        expected = set(zip(part.userID, part.itemID, strict=True))
        got = set(zip(csr.row_ids().tolist(), csr.indices.tolist(), strict=True))
        assert got == expected
    torch.testing.assert_close(
        data.text_feat, torch.from_numpy(np.load(tiny_root / "text_feat.npy"))
    )
    dense = data.train_matrix().to_dense()
    assert dense.sum() == data.train.nnz and dense.max() == 1


def test_modalities_subset(tiny_root: Path) -> None:
    dm = InteractionDataModule(tiny_root, modalities=["text"])
    assert dm.feature_dims == {"text": 16}
    assert set(dm.load().features) == {"text"}


def test_catalogue_format_orders_items_by_item_ids(tmp_path: Path) -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["u2", "u2", "u1", "u1", "u1"],
            "item_id": ["b", "c", "a", "b", "c"],
            "timestamp": np.arange(5, dtype=np.int64),
            "rating": np.ones(5, dtype=np.float32),
            "split": ["train", "test", "train", "valid", "test"],
        }
    )
    inter.to_parquet(tmp_path / "interactions.parquet")
    feats = tmp_path / "features"
    feats.mkdir()
    (feats / "item_ids.txt").write_text("c\na\nb\n")
    np.save(feats / "text_feat.npy", np.eye(3, 4, dtype=np.float32))
    dm = InteractionDataModule(tmp_path)
    assert (dm.num_users, dm.num_items, dm.feature_dims) == (2, 3, {"text": 4})
    data = dm.load()
    assert data.item_ids == ["c", "a", "b"] and data.user_ids == ["u1", "u2"]
    # u1 (index 0) trained on "a" (index 1); u2 (index 1) on "b" (index 2)
    assert data.train.dense(torch.tensor([0, 1])).nonzero().tolist() == [[0, 1], [1, 2]]
    assert data.splits["test"].dense(torch.tensor([0])).nonzero()[:, 1].tolist() == [0]


def test_catalogue_item_without_feature_row_fails(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": ["u"], "item_id": ["zz"], "split": ["train"]}).to_parquet(
        tmp_path / "interactions.parquet"
    )
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "item_ids.txt").write_text("a\n")
    with pytest.raises(ValueError, match=r"'zz'.*no feature row"):
        InteractionDataModule(tmp_path)


def test_feature_rows_must_match_items(tmp_path: Path, tiny_root: Path) -> None:
    (tmp_path / "x.inter").write_text((tiny_root / "tiny.inter").read_text())
    np.save(tmp_path / "text_feat.npy", np.zeros((5, 3), np.float32))
    np.save(tmp_path / "image_feat.npy", np.zeros((80, 3), np.float32))
    with pytest.raises(ValueError, match=r"text_feat\.npy: expected shape"):
        InteractionDataModule(tmp_path)


def test_csr_gather_matches_naive() -> None:
    gen = torch.Generator().manual_seed(1)
    rows, cols = (
        torch.randint(0, 7, (40,), generator=gen),
        torch.randint(0, 9, (40,), generator=gen),
    )
    csr = CSR.from_pairs(rows, cols, 7, 9)
    query = torch.tensor([3, 0, 6, 3])
    pos, got = csr.gather(query)
    expected = sorted(
        (b, c)
        for b, u in enumerate(query.tolist())
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        if r == u
    )
    assert sorted(zip(pos.tolist(), got.tolist(), strict=True)) == expected
    pairs = set(zip(rows.tolist(), cols.tolist(), strict=True))
    r_all, c_all = torch.meshgrid(torch.arange(7), torch.arange(9), indexing="ij")
    contains = csr.contains(r_all.flatten(), c_all.flatten())
    naive = torch.tensor(
        [
            (r, c) in pairs
            for r, c in zip(r_all.flatten().tolist(), c_all.flatten().tolist(), strict=True)
        ]
    )
    assert torch.equal(contains, naive)


def test_bpr_sampler_never_yields_train_positives(tiny_root: Path) -> None:
    data = InteractionDataModule(tiny_root).load()
    train_pairs = set(zip(data.train.row_ids().tolist(), data.train.indices.tolist(), strict=True))
    batches = BPRBatches(data.train, batch_size=100, seed=3)
    epochs = []
    for _ in range(3):
        seen = []
        for users, pos, neg in batches:
            assert users.shape == pos.shape == neg.shape and users.numel() <= 100
            for u, i, j in zip(users.tolist(), pos.tolist(), neg.tolist(), strict=True):
                assert (u, i) in train_pairs and (u, j) not in train_pairs
            seen += list(zip(users.tolist(), pos.tolist(), strict=True))
        assert sorted(seen) == sorted(train_pairs)  # each train pair exactly once per epoch
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    assert len(batches) == -(-data.train.nnz // 100)


def test_negatives_are_uniform_over_allowed_items() -> None:
    # user 0 trained on items 0..5 of 10: negatives must be uniform over 6..9
    csr = CSR.from_pairs(torch.zeros(6, dtype=torch.long), torch.arange(6), 1, 10)
    gen = torch.Generator().manual_seed(0)
    neg = sample_negatives(csr, torch.zeros(8000, dtype=torch.long), torch.arange(10), gen)
    counts = torch.bincount(neg, minlength=10)
    assert counts[:6].sum() == 0
    assert (counts[6:] - 2000).abs().max() < 200


def test_sampling_impossible_user_is_an_error() -> None:
    csr = CSR.from_pairs(torch.zeros(3, dtype=torch.long), torch.arange(3), 1, 3)
    with pytest.raises(ValueError, match="user 0 trained on all 3 items"):
        sample_negatives(csr, torch.zeros(2, dtype=torch.long), torch.arange(3), torch.Generator())


def test_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.inter").write_text("userID\titemID\n0\t1\n")
    with pytest.raises(ValueError, match=r"bad\.inter: missing column\(s\) \['x_label'\]"):
        InteractionDataModule(tmp_path)
