"""BERTScore parity with the ``bert-score`` package on the packaged MiniLM backbone."""

from __future__ import annotations

from pathlib import Path

import bert_score as reference
import pytest
import torch
from torch.testing import assert_close
from transformers import AutoModel, AutoTokenizer, RobertaTokenizer

from mmpc.metrics import BERTScore, MissingWeightsError
from mmpc.metrics.backbones import minilm_path
from mmpc.metrics.functional import bert_score
from mmpc.metrics.functional.bertscore import _encode, bert_score_idf
from mmpc.metrics.functional.bertscore_backbone import (
    bert_score_package_model_type,
    load_backbone,
)

MINILM = str(minilm_path())
# The same folder through a path the bert-score package does not misread (a checkout under e.g.
# /tmp/tmp.aKt5x/ once made it load MiniLM as a random T5 encoder).
REF_MINILM = bert_score_package_model_type(MINILM)

PREDS = [
    "Wireless Bluetooth Headphones with Active Noise Cancelling",
    "Café crème brûlée ramekins, set of 4",
    "USB-C to USB-C cable 2m, 100W fast charging",
    "the",
    "Stainless steel kitchen knife set with wooden block",
    "Stainless steel kitchen knife set with wooden block",  # repeated text
    "日本語の商品名 ceramic mug",
]
TARGET = [
    "Noise-cancelling over-ear Bluetooth headphones",
    "Creme brulee ramekins (4 pack)",
    "usb c charging cable, 2 m",
    "Professional wireless gaming mouse with RGB lighting and 6 buttons",
    "Kitchen knife block set, 15 pieces, stainless steel",
    "Wooden knife block",
    "ceramic coffee mug",
]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny batches gain nothing from intra-op threads; one thread is steadier on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(MINILM, num_layers=6, device="cpu")


@pytest.fixture(scope="module")
def scorer() -> reference.BERTScorer:
    return reference.BERTScorer(model_type=REF_MINILM, num_layers=6, device="cpu")


@pytest.fixture(scope="module")
def reference_prf(scorer: reference.BERTScorer) -> torch.Tensor:
    # batch_size=1: bert-score's per-pair semantics, as the published code called it.
    p, r, f = scorer.score(PREDS, TARGET, batch_size=1)
    return torch.stack([p, r, f], dim=1)


def test_parity_with_bert_score_package(backbone, reference_prf: torch.Tensor) -> None:
    ours = bert_score(PREDS, TARGET, model=backbone, output="all", reduction="none", batch_size=3)
    assert_close(ours["precision"], reference_prf[:, 0])
    assert_close(ours["recall"], reference_prf[:, 1])
    assert_close(ours["f1"], reference_prf[:, 2])
    assert_close(bert_score(PREDS, TARGET, model=backbone), reference_prf[:, 2].mean())


def test_parity_on_text_longer_than_the_model(backbone, scorer: reference.BERTScorer) -> None:
    long_pred = ["LEGO Star Wars Millennium Falcon building kit " * 80]  # > 512 tokens
    long_target = ["Star Wars Millennium Falcon LEGO set"]
    assert len(backbone.tokenizer(long_pred[0])["input_ids"]) > 512
    _, _, f = scorer.score(long_pred, long_target, batch_size=1)
    assert_close(bert_score(long_pred, long_target, model=backbone, reduction="none"), f)


def test_parity_with_idf(backbone, scorer: reference.BERTScorer) -> None:
    idf_dict = reference.utils.get_idf_dict(TARGET[:5], scorer._tokenizer, nthreads=0)
    p, r, f = reference.utils.bert_cos_score_idf(
        scorer._model,
        TARGET[:5],
        PREDS[:5],
        scorer._tokenizer,
        idf_dict,
        batch_size=1,
        device="cpu",
    ).unbind(dim=1)
    ours = bert_score(
        PREDS[:5], TARGET[:5], model=backbone, idf=True, output="all", reduction="none"
    )
    assert_close(ours["precision"], p)
    assert_close(ours["recall"], r)
    assert_close(ours["f1"], f)
    idf = bert_score_idf(TARGET[:5], backbone.tokenizer)
    assert_close(bert_score(PREDS[:5], TARGET[:5], model=backbone, idf=idf, reduction="none"), f)


def test_callable_backbone_and_middle_layer() -> None:
    def factory():
        return AutoModel.from_pretrained(MINILM), AutoTokenizer.from_pretrained(MINILM)

    _, _, f = reference.score(
        PREDS[:3], TARGET[:3], model_type=REF_MINILM, num_layers=3, batch_size=1
    )
    # From a folder the model is cut to 3 layers; a callable's model is left whole and layer 3
    # is read from its hidden_states.
    truncated = bert_score(PREDS[:3], TARGET[:3], model=MINILM, num_layers=3, reduction="none")
    from_callable = bert_score(PREDS[:3], TARGET[:3], model=factory, num_layers=3, reduction="none")
    assert_close(truncated, f)
    assert_close(from_callable, f)


def test_byte_level_bpe_gets_the_leading_space() -> None:
    # A tiny RoBERTa tokenizer built in code, where "Ġhe" (space + "he") is its own token.
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "h": 4, "e": 5, "l": 6, "o": 7}
    vocab |= {"Ġ": 8, "w": 9, "r": 10, "d": 11, "Ġh": 12, "he": 13, "ll": 14, "Ġw": 15}
    vocab |= {"or": 16, "ld": 17, "Ġhe": 18}
    merges = [("Ġ", "h"), ("h", "e"), ("l", "l"), ("Ġ", "w"), ("o", "r"), ("l", "d"), ("Ġh", "e")]
    tok = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=512)
    # bert-score asks for add_prefix_space=True; transformers 5 ignores that keyword in encode(),
    # so the space is added to the text itself: "hello" starts with the "Ġhe" token.
    assert _encode(["  hello world "], tok) == [tok.encode(" hello world")]
    assert _encode(["hello world"], tok)[0][1] == vocab["Ġhe"]
    assert _encode([""], tok) == [[vocab["<s>"], vocab["</s>"]]]


def test_empty_and_whitespace_texts_score_zero(backbone) -> None:
    out = bert_score(
        ["", "   ", "red wallet", None],  # type: ignore[list-item]
        ["red wallet", "red wallet", "\n", "red wallet"],
        model=backbone,
        output="all",
        reduction="none",
    )
    for values in out.values():
        assert torch.equal(values, torch.zeros(4))


def test_class_accumulates_like_functional(backbone, reference_prf: torch.Tensor) -> None:
    metric = BERTScore(model=backbone, reduction="none", output="all", batch_size=4)
    metric.update(PREDS[:4], TARGET[:4])
    metric.update(PREDS[4:], TARGET[4:])
    got = metric.compute()
    assert_close(got["f1"], reference_prf[:, 2])
    assert_close(got["precision"], reference_prf[:, 0])
    mean_f1 = BERTScore(model=backbone)
    mean_f1.update(PREDS[:3], TARGET[:3])
    assert_close(mean_f1.compute(), reference_prf[:3, 2].mean())
    idf_metric = BERTScore(model=backbone, idf=True, reduction="none")
    idf_metric.update(PREDS[:2], TARGET[:2])
    idf_metric.update(PREDS[2:5], TARGET[2:5])
    expected = bert_score(PREDS[:5], TARGET[:5], model=backbone, idf=True, reduction="none")
    assert_close(idf_metric.compute(), expected)
    idf_metric.reset()
    assert idf_metric._texts == ([], [])
    with pytest.raises(RuntimeError, match="compute"):
        idf_metric(PREDS[:1], TARGET[:1])
    batch_metric = BERTScore(model=backbone, reduction="none")
    first = batch_metric(PREDS[:2], TARGET[:2])  # forward: the batch's own scores
    batch_metric(PREDS[2:3], TARGET[2:3])
    assert_close(first, reference_prf[:2, 2])
    assert_close(batch_metric.compute(), reference_prf[:3, 2])


def test_missing_weights_are_one_clear_line(tmp_path) -> None:
    with pytest.raises(MissingWeightsError, match=r"roberta-large.*model='/path/to/roberta-large'"):
        load_backbone("roberta-large", cache_dir=str(tmp_path))
    missing = tmp_path / "no-such-model"
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_backbone(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match="empty"):
        load_backbone(str(tmp_path / "empty"))
    metric = BERTScore(model=str(missing))
    with pytest.raises(MissingWeightsError):
        metric.update(["a"], ["b"])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="output"):
        BERTScore(model=MINILM, output="bleu")
    with pytest.raises(ValueError, match="num_layers"):
        load_backbone(MINILM, num_layers=7, device="cpu")
    with pytest.raises(ValueError, match="preds has 2 texts but target has 1"):
        bert_score(["a", "b"], ["a"], model=MINILM, num_layers=6, device="cpu")


def test_reference_path_is_free_of_bert_score_triggers(tmp_path: Path) -> None:
    """A folder whose path contains "t5" gets a safe symlink to the same files."""
    risky = tmp_path / "tmp.aKt5x" / "model"
    risky.mkdir(parents=True)
    (risky / "config.json").write_text("{}")
    safe = bert_score_package_model_type(risky)
    assert "t5" not in safe and "uncased" not in safe
    assert Path(safe).resolve() == risky.resolve()
    assert (Path(safe) / "config.json").read_text() == "{}"
    plain = tmp_path / "minilm"
    plain.mkdir()
    if "t5" not in str(plain.resolve()):
        assert bert_score_package_model_type(plain) == str(plain.resolve())
