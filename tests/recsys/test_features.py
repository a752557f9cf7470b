from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from mmpc.metrics.backbones import minilm_path
from mmpc.metrics.errors import MissingWeightsError
from mmpc.recsys.conditions import (
    condition_features,
    impute,
    read_completed_outputs,
    read_condition,
    read_feature_folder,
    save_condition,
    write_condition,
    write_imputed_condition,
)
from mmpc.recsys.data import InteractionDataModule
from mmpc.recsys.features import (
    ImageEncoder,
    TextEncoder,
    extract_features,
    write_feature_folder,
)


@pytest.fixture
def gt_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    ids = [f"item{i}" for i in range(12)]
    feats = {
        "text": rng.standard_normal((12, 5)).astype(np.float32),
        "image": rng.random((12, 7)).astype(np.float32),
    }
    return write_feature_folder(tmp_path / "gt", ids, feats)


def test_feature_folder_roundtrip_and_datamodule(gt_folder: Path, tmp_path: Path) -> None:
    ids, feats = read_feature_folder(gt_folder)
    assert ids[:2] == ["item0", "item1"] and feats["text"].shape == (12, 5)
    pd.DataFrame(
        {"user_id": ["u0", "u0", "u1"], "item_id": ["item3", "item5", "item3"],
         "split": ["train", "valid", "test"]}
    ).to_parquet(tmp_path / "interactions.parquet")  # fmt: skip
    dm = InteractionDataModule(tmp_path, feature_dir=gt_folder)
    assert dm.num_items == 12 and dm.feature_dims == {"text": 5, "image": 7}
    torch.testing.assert_close(dm.load().image_feat, torch.from_numpy(feats["image"]))
    assert not list(gt_folder.glob("*.tmp")) and not list(gt_folder.glob("tmp*"))


def test_write_condition_replaces_only_completed_rows(gt_folder: Path, tmp_path: Path) -> None:
    _, gt = read_feature_folder(gt_folder)
    new = {"item4": np.full(5, 9.0), "item0": np.full(5, -1.0)}
    out = write_condition(
        gt_folder, tmp_path / "cond", "text", new, masked_items=["item0", "item4"],
        info={"completer": "x"},
    )  # fmt: skip
    stored = read_condition(out)
    assert (stored.modality, stored.item_ids, stored.info) == (
        "text",
        ["item0", "item4"],
        {"completer": "x"},
    )
    _, cond = condition_features(gt_folder, out)
    expected = gt["text"].copy()
    expected[4], expected[0] = 9.0, -1.0
    np.testing.assert_array_equal(cond["text"], expected)
    np.testing.assert_array_equal(cond["image"], gt["image"])  # other modality untouched
    with pytest.raises(ValueError, match=r"'nope' is not in item_ids\.txt"):
        write_condition(gt_folder, tmp_path / "bad", "text", {}, masked_items=["nope"])
    with pytest.raises(ValueError, match=r"shape \(3,\), ground truth rows \(5,\)"):
        write_condition(
            gt_folder, tmp_path / "bad", "text", {"item1": np.zeros(3)}, masked_items=["item1"]
        )
    with pytest.raises(ValueError, match="'item2' is not among the masked items"):
        write_condition(gt_folder, tmp_path / "bad", "text", {"item2": np.zeros(5)},
                        masked_items=["item1"])  # fmt: skip
    with pytest.raises(ValueError, match="unknown on_failure 'gt'"):
        write_condition(gt_folder, tmp_path / "bad", "text", {}, masked_items=[], on_failure="gt")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("on_failure", ["zeros", "mean", "knn"])
def test_write_condition_failed_items_never_keep_ground_truth(
    gt_folder: Path, tmp_path: Path, on_failure: str
) -> None:
    """A masked item whose completion failed gets the fill, not its (leaking) true row."""
    _, gt = read_feature_folder(gt_folder)
    masked = ["item1", "item5", "item6"]
    completed = {"item5": np.full(7, 3.0)}
    out = write_condition(gt_folder, tmp_path / on_failure, "image", completed,
                          masked_items=masked, on_failure=on_failure, k=3)  # fmt: skip
    assert read_condition(out).item_ids == masked
    _, cond = condition_features(gt_folder, out)
    mask = np.zeros(12, dtype=bool)
    mask[[1, 5, 6]] = True
    fill = impute(gt, "image", mask, on_failure, k=3)  # rows of items 1, 5, 6
    np.testing.assert_array_equal(cond["image"][5], np.full(7, 3.0))
    np.testing.assert_allclose(cond["image"][[1, 6]], fill[[0, 2]], rtol=1e-6)
    assert not np.allclose(cond["image"][1], gt["image"][1])  # the true row is gone
    keep = np.flatnonzero(~mask)
    np.testing.assert_array_equal(cond["image"][keep], gt["image"][keep])
    with pytest.raises(ValueError, match=r"2 masked item\(s\) have no completion"):
        write_condition(gt_folder, tmp_path / "strict", "image", completed,
                        masked_items=masked, on_failure="error")  # fmt: skip


def test_imputations_match_naive(gt_folder: Path, tmp_path: Path) -> None:
    _, feats = read_feature_folder(gt_folder)
    masked = np.zeros(12, dtype=bool)
    masked[[1, 5, 6]] = True
    keep = np.flatnonzero(~masked)
    np.testing.assert_array_equal(impute(feats, "image", masked, "zeros"), np.zeros((3, 7)))
    mean = impute(feats, "image", masked, "mean")
    np.testing.assert_allclose(mean, np.repeat(feats["image"][keep].mean(0)[None], 3, 0), rtol=1e-6)
    knn = impute(feats, "image", masked, "knn", k=3, chunk=2)
    text = feats["text"] / np.linalg.norm(feats["text"], axis=1, keepdims=True)
    for row, item in enumerate(np.flatnonzero(masked)):
        sims = text[keep] @ text[item]
        nearest = keep[np.argsort(-sims)[:3]]
        np.testing.assert_allclose(knn[row], feats["image"][nearest].mean(0), rtol=1e-5)
    out = write_imputed_condition(gt_folder, tmp_path / "knn", "image", ["item1", "item5", "item6"],
                                  "knn", k=3)  # fmt: skip
    _, cond = condition_features(gt_folder, out)
    np.testing.assert_allclose(cond["image"][[1, 5, 6]], knn, rtol=1e-6)
    np.testing.assert_array_equal(cond["image"][keep], feats["image"][keep])


def test_condition_folder_bytes_are_the_bench_format(gt_folder: Path, tmp_path: Path) -> None:
    """rows.npy + item_ids.txt + condition.json, exactly as RecBench run folders hold them."""
    import io

    rows = np.arange(10, dtype=np.float64).reshape(2, 5)
    out = save_condition(tmp_path / "c", "text", ["item3", "item1"], rows, {"kind": "completer"})
    buf = io.BytesIO()
    np.save(buf, rows.astype(np.float32))
    assert (out / "rows.npy").read_bytes() == buf.getvalue()
    assert (out / "item_ids.txt").read_text() == "item3\nitem1\n"
    assert (out / "condition.json").read_text() == (
        '{\n  "kind": "completer",\n  "modality": "text"\n}\n'
    )
    _, feats = condition_features(gt_folder, out)
    _, gt = read_feature_folder(gt_folder)
    np.testing.assert_array_equal(feats["text"][[3, 1]], rows.astype(np.float32))
    np.testing.assert_array_equal(
        np.delete(feats["text"], [1, 3], 0), np.delete(gt["text"], [1, 3], 0)
    )
    with pytest.raises(ValueError, match=r"rows of shape \(2, 5\) for 1 item ids"):
        save_condition(tmp_path / "bad", "text", ["item3"], rows)
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        save_condition(tmp_path / "bad", "audio", ["item3", "item1"], rows)


def test_read_completed_outputs(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    lines = [
        {"item_id": "a", "task": "i2t", "output": "Red mug", "error": None},
        {"item_id": "b", "task": "i2t", "output": None, "error": "parse failure"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert read_completed_outputs(path) == {"a": "Red mug"}


@pytest.mark.slow
def test_text_encoder_matches_transformers_mean_pooling() -> None:
    from transformers import AutoModel, AutoTokenizer

    texts = ["A red ceramic coffee mug", "Wireless noise-cancelling headphones"]
    ours = TextEncoder(batch_size=2).encode(texts)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path()).eval()
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    assert ours.shape == (2, 384) and ours.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(ours), ref, atol=1e-5, rtol=1e-4)


def test_text_encoder_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"no config\.json"):
        TextEncoder(tmp_path)


def _photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.astronaut()), Image.fromarray(data.coffee())]


def test_stlpips_image_encoder_matches_package_loading() -> None:
    from stlpips_pytorch import stlpips

    encoder = ImageEncoder(image_size=96, device="cpu")
    feats = encoder.encode(_photos())
    assert feats.shape == (2, 64 + 192 + 384 + 256 + 256)
    assert "ST-LPIPS" in encoder.label
    ref = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    images = [np.asarray(im.resize((96, 96), Image.BILINEAR)) for im in _photos()]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    with torch.no_grad():
        stages = ref.net(ref.scaling_layer(x))
    expected = torch.cat([s.mean(dim=(2, 3)) for s in stages], dim=1)
    torch.testing.assert_close(torch.from_numpy(feats), expected)
    assert not np.allclose(feats[0], feats[1])


def test_image_encoder_refuses_random_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="random weights are never used"):
        ImageEncoder("torchvision", model="squeezenet1_1")
    with pytest.raises(MissingWeightsError, match="not found"):
        ImageEncoder("torchvision", model="squeezenet1_1", weights=tmp_path / "none.pt")
    with pytest.raises(MissingWeightsError, match="open_clip ViT-B-32 weights"):
        ImageEncoder("open_clip", model="ViT-B-32", weights=tmp_path / "missing.bin")


def test_torchvision_encoder_loads_local_weights(tmp_path: Path) -> None:
    import torchvision

    net = torchvision.models.get_model("squeezenet1_1", weights=None)
    torch.save(net.state_dict(), tmp_path / "sq.pt")
    encoder = ImageEncoder("torchvision", model="squeezenet1_1", weights=tmp_path / "sq.pt",
                           image_size=64, device="cpu")  # fmt: skip
    feats = encoder.encode(_photos())
    assert feats.shape == (2, 512)  # pooled trunk, classifier removed
    x = torch.from_numpy(
        np.stack([np.asarray(im.resize((64, 64), Image.BILINEAR)) for im in _photos()])
    )
    x = (
        x.permute(0, 3, 1, 2).float() / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    ) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net.eval().features(x).mean(dim=(2, 3))
    torch.testing.assert_close(torch.from_numpy(feats), expected, atol=1e-5, rtol=1e-4)


class LetterCounts:
    """A tiny deterministic text encoder (letter histogram) with TextEncoder's interface."""

    label = "letter-counts"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack(
            [np.bincount([ord(c) % 26 for c in t.lower()], minlength=26) for t in texts]
        ).astype(np.float32)


def test_extract_features_from_catalogue(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    (root / "images").mkdir(parents=True)
    photos = _photos()
    for i, im in enumerate(photos):
        im.save(root / "images" / f"i{i}.png")
    pd.DataFrame(
        {"item_id": ["i0", "i1"], "title": ["Astronaut poster", "Coffee cup"],
         "image": ["images/i0.png", "images/i1.png"]}
    ).to_parquet(root / "items.parquet")  # fmt: skip
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # mean colour: a real encoder
    image_encoder = ImageEncoder(module=pool, image_size=32, device="cpu")
    text_encoder = LetterCounts()
    out = extract_features(root, tmp_path / "feats", text_encoder, image_encoder, chunk=1)
    ids, feats = read_feature_folder(out)
    assert ids == ["i0", "i1"] and not (out / ".partial").exists()
    expected_text = text_encoder.encode(["Astronaut poster", "Coffee cup"])
    np.testing.assert_allclose(feats["text"], expected_text, atol=1e-5)
    np.testing.assert_allclose(feats["image"], image_encoder.encode(photos), rtol=1e-6)
    bad = pd.read_parquet(root / "items.parquet").assign(image=["../x.png", "images/i1.png"])
    bad.to_parquet(root / "items.parquet")
    with pytest.raises(ValueError, match="leaves the catalogue folder"):
        extract_features(root, tmp_path / "f2", None, image_encoder)
