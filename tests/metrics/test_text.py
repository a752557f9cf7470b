"""Parity of the lexical text metrics with the published scikit-learn recipe, and odd inputs."""

from __future__ import annotations

import random
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity, euclidean_distances
from torch.testing import assert_close

from mmpc.metrics import TFIDFCosineSimilarity, TFIDFEuclideanSimilarity, TokenOverlap
from mmpc.metrics.functional import (
    tfidf_cosine_similarity,
    tfidf_euclidean_similarity,
    token_overlap,
)
from mmpc.metrics.functional.text import clean_text


def _reference_clean(text: str) -> str:
    text = text.lower()
    text = re.sub(r"[^a-zA-Z0-9\s]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _reference(a: str, b: str) -> tuple[float, float, float]:
    """The published per-pair procedure: a fresh TfidfVectorizer per pair, sklearn distances."""
    ca, cb = _reference_clean(a), _reference_clean(b)
    if not ca or not cb:
        return 0.0, 0.0, 0.0
    try:
        vectorizer = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), max_features=1000)
        m = vectorizer.fit_transform([ca, cb])
        cos = float(cosine_similarity(m[0:1], m[1:2])[0][0])
        euc = 1.0 / (1.0 + float(euclidean_distances(m[0:1], m[1:2])[0][0]))
    except ValueError:  # empty vocabulary: both texts are stop words only
        cos, euc = 0.0, 0.0
    wa, wb = set(ca.split()), set(cb.split())
    jac = len(wa & wb) / len(wa | wb) if wa and wb else 0.0
    return cos, euc, jac


def _long_text(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    vocab = [f"w{i}x" for i in range(400)] + ["alpha", "beta", "gamma", "delta"]
    return " ".join(rng.choice(vocab) for _ in range(n_words))


ODD_PAIRS: list[tuple[str, str]] = [
    ("Wireless Bluetooth Headphones, Noise Cancelling", "Noise-cancelling wireless headphones"),
    ("identical text here", "identical text here"),
    ("Café crème brûlée set", "creme brulee set (café)"),
    ("日本語のタイトル mug", "mug title"),
    ("USB-C 3.1 cable 2m", "usb c cable, 2 m long"),
    ("a b c d", "a b c"),  # single characters: no TF-IDF terms, but tokens for overlap
    ("the and of", "is are was"),  # both stop words only: empty vocabulary
    ("", "red shoe"),
    ("   \t\n ", "red shoe"),
    ("red shoe", "!!!???"),
    ("emoji 😀 mug mug mug", "mug 😀"),
    ("under_score snake_case", "under score"),
    ("repeated repeated repeated word", "word word repeated"),
    (_long_text(0, 900), _long_text(1, 900)),  # > 1000 terms: max_features cut
    (_long_text(2, 1500), _long_text(2, 700)),
]


def test_clean_text_matches_published_regex() -> None:
    for a, b in ODD_PAIRS:
        assert clean_text(a) == _reference_clean(a)
        assert clean_text(b) == _reference_clean(b)
    assert clean_text(None) == ""  # type: ignore[arg-type]
    assert clean_text("Café_Crème", unicode=True) == "café crème"


def test_parity_with_sklearn_on_odd_pairs() -> None:
    preds, target = zip(*ODD_PAIRS, strict=True)
    ref = torch.tensor([_reference(a, b) for a, b in ODD_PAIRS], dtype=torch.float64)
    assert_close(tfidf_cosine_similarity(preds, target, reduction="none"), ref[:, 0])
    assert_close(tfidf_euclidean_similarity(preds, target, reduction="none"), ref[:, 1])
    assert_close(token_overlap(preds, target, reduction="none"), ref[:, 2])


def test_max_features_cut_is_exercised() -> None:
    a, b = ODD_PAIRS[-2]
    uncapped = tfidf_cosine_similarity([a], [b], max_features=None)
    capped = tfidf_cosine_similarity([a], [b])
    assert not torch.isclose(uncapped, capped)


_WORDS = st.sampled_from(
    [
        *["red", "Red", "shoe", "shoes", "the", "a", "of", "leather"],
        *["USB-C", "2m", "é", "x", "12", "!!", "ß"],
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_WORDS, max_size=12), st.lists(_WORDS, max_size=12))
def test_parity_with_sklearn_property(words_a: list[str], words_b: list[str]) -> None:
    a, b = " ".join(words_a), " ".join(words_b)
    cos, euc, jac = _reference(a, b)
    got_cos = tfidf_cosine_similarity([a], [b], reduction="none")[0].item()
    got_euc = tfidf_euclidean_similarity([a], [b], reduction="none")[0].item()
    got_jac = token_overlap([a], [b], reduction="none")[0].item()
    assert got_jac == pytest.approx(jac, abs=1e-12)
    assert got_cos == pytest.approx(cos, abs=1e-9)
    if got_euc == 0.0 and euc == pytest.approx(0.5):
        # The one documented departure: one side has only stop words (zero TF-IDF vector).
        assert got_cos == 0.0
    else:
        assert got_euc == pytest.approx(euc, abs=1e-7)


def test_one_side_stop_words_scores_zero() -> None:
    preds, target = ["the of and"], ["red leather shoe"]
    assert _reference(preds[0], target[0])[1] == pytest.approx(0.5)  # published code
    assert tfidf_euclidean_similarity(preds, target).item() == 0.0  # this project
    assert tfidf_cosine_similarity(preds, target).item() == 0.0


def test_degenerate_inputs_are_zero_not_nan() -> None:
    preds = ["", "   ", "the of", "日本語", "!!!"]
    target = ["red shoe", "red shoe", "is are", "日本語", "???"]
    for fn in (tfidf_cosine_similarity, tfidf_euclidean_similarity, token_overlap):
        values = fn(preds, target, reduction="none")
        assert values.shape == (5,)
        assert torch.equal(values, torch.zeros(5, dtype=torch.float64)), fn.__name__


def test_unicode_mode_keeps_non_ascii_letters() -> None:
    values = token_overlap(["日本語 タイトル"], ["日本語"], reduction="none", unicode=True)
    assert_close(values, torch.tensor([0.5], dtype=torch.float64))
    cos = tfidf_cosine_similarity(["crème brûlée"], ["crème brûlée"], unicode=True)
    assert_close(cos, torch.tensor(1.0, dtype=torch.float64))


def test_hand_computed_pair() -> None:
    # Terms of a: red, leather, wallet, "red leather", "leather wallet"; of b: red, wallet,
    # "red wallet". Shared: red, wallet (idf 1); the rest idf 1 + ln 1.5.
    a, b = "Red leather wallet", "red wallet"
    i = 1.0 + torch.log(torch.tensor(1.5, dtype=torch.float64))
    cos = 2.0 / (torch.sqrt(2 + 3 * i**2) * torch.sqrt(2 + i**2))
    assert_close(tfidf_cosine_similarity([a], [b]), cos)
    assert_close(tfidf_euclidean_similarity([a], [b]), 1 / (1 + torch.sqrt(2 - 2 * cos)))
    assert_close(token_overlap([a], [b]), torch.tensor(2 / 3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("cls", "fn"),
    [
        (TFIDFCosineSimilarity, tfidf_cosine_similarity),
        (TFIDFEuclideanSimilarity, tfidf_euclidean_similarity),
        (TokenOverlap, token_overlap),
    ],
)
def test_class_accumulates_like_functional(cls: type, fn: object) -> None:
    preds, target = zip(*ODD_PAIRS[:10], strict=True)
    metric = cls()
    metric.update(list(preds[:4]), list(target[:4]))
    metric.update(list(preds[4:]), list(target[4:]))
    expected = fn(preds, target, reduction="none")  # type: ignore[operator]
    assert_close(metric.compute(), expected.mean())
    per_item = cls(reduction="none")
    per_item.update(list(preds), list(target))
    assert_close(per_item.compute(), expected)
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(metric.compute())


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="preds has 2 texts but target has 1"):
        token_overlap(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reduction"):
        TokenOverlap(reduction="sum")


def test_tfidf_pair_scores_do_not_depend_on_the_hash_seed() -> None:
    """Reruns in other processes (other PYTHONHASHSEED) give bit-identical scores."""
    import os
    import subprocess
    import sys

    code = (
        "import random\n"
        "from mmpc.metrics.functional.text import tfidf_pair_scores as f\n"
        "rng = random.Random(0)\n"
        "words = [f'w{i}x' for i in range(40)]\n"
        "pairs = [(' '.join(rng.choices(words, k=12)), ' '.join(rng.choices(words, k=12)))"
        " for _ in range(200)]\n"
        "print([repr(f(a, b)) for a, b in pairs])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(outs) == 1, outs
