"""The offline stand-in I→T completer: its probe's training data, cache, decoding lexicon."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import ImageOps

from mmpc.completion.backends import OfflineVisionLM
from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.lexicon import LexiconConstraint, _lexicon_state
from mmpc.completion.backends.offline_vlm import (
    AttributeProbe,
    perceived_messages,
    probe_training_ids,
)
from mmpc.completion.backends.retrieval import ColorHistogramEncoder
from mmpc.completion.catalog import Catalog
from mmpc.completion.parsing import parse_answer
from mmpc.completion.prompts import build_messages, default_template

SMALL = {"image_size": 64, "max_iter": 30}


def _fit(catalog: Catalog, cache: Path) -> AttributeProbe:
    return AttributeProbe(**SMALL, cache_dir=str(cache)).fit(catalog)


def _edited(catalog: Catalog, root: Path, item: str, donor: str) -> Catalog:
    """A copy of ``catalog`` where ``item`` has ``donor``'s attributes and a mirrored cover."""
    shutil.copytree(catalog.root, root)
    items = catalog.items.copy()
    columns = ["product_type", "color", "pattern", "size", "brand"]
    items.loc[item, columns] = items.loc[donor, columns].to_numpy()
    edited = dataclasses.replace(catalog, root=root, items=items)
    ImageOps.mirror(catalog.load_image(donor)).save(edited.image_path(item))
    return edited


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The dev box has two shared cores: one intra-op thread is several times faster here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def histogram_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap image features for the tests of what the probe learns from (AlexNet is slow here)."""
    monkeypatch.setattr(
        AttributeProbe, "features", lambda self, images: ColorHistogramEncoder().encode(images)
    )


@pytest.mark.usefixtures("histogram_features")
def test_probe_learns_only_from_training_items(tiny_catalog: Catalog, tmp_path: Path) -> None:
    held_out = set(tiny_catalog.sample("cqbench")) | set(tiny_catalog.sample("grpo"))
    ids = probe_training_ids(tiny_catalog)
    assert ids and not set(ids) & held_out
    assert set(ids) | held_out == set(tiny_catalog.items.index)
    probe = _fit(tiny_catalog, tmp_path / "a")
    assert probe.fitted_on == ids

    cq_item, grpo_item, train_item = (
        tiny_catalog.sample("cqbench")[0],
        tiny_catalog.sample("grpo")[0],
        ids[0],
    )
    donor = ids[-1]
    for name, item in (("cq", cq_item), ("grpo", grpo_item)):  # held-out edits: same weights
        other = _fit(_edited(tiny_catalog, tmp_path / name, item, donor), tmp_path / f"c-{name}")
        assert other._state.keys() == probe._state.keys()
        assert all(torch.equal(probe._state[k], other._state[k]) for k in probe._state)
    changed = _fit(_edited(tiny_catalog, tmp_path / "t", train_item, donor), tmp_path / "c-t")
    assert any(not torch.equal(probe._state[k], changed._state[k]) for k in probe._state)


@pytest.mark.usefixtures("histogram_features")
def test_probe_cache_is_keyed_and_reused(
    tiny_catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_arrays = AttributeProbe.fit_arrays
    probe = _fit(tiny_catalog, tmp_path)
    [cached] = (tmp_path / "offline-vlm").glob("probe-*.safetensors")
    assert json.loads(cached.with_suffix(".json").read_text())["vocab"] == probe.vocab
    images = [tiny_catalog.load_image(i) for i in tiny_catalog.sample("cqbench")[:3]]

    def refit(*args: object) -> None:
        raise AssertionError("refitted although the cache holds this fit")

    monkeypatch.setattr(AttributeProbe, "fit_arrays", refit)
    again = _fit(tiny_catalog, tmp_path)
    assert again.predict(images) == probe.predict(images)  # deterministic, from the cache
    monkeypatch.setattr(AttributeProbe, "fit_arrays", fit_arrays)
    AttributeProbe(**{**SMALL, "weight_decay": 0.5}, cache_dir=str(tmp_path)).fit(tiny_catalog)
    assert len(list((tmp_path / "offline-vlm").glob("probe-*.safetensors"))) == 2


@pytest.mark.usefixtures("histogram_features")
def test_probe_probabilities_agree_with_its_predictions(
    tiny_catalog: Catalog, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        AttributeProbe(**SMALL).probabilities([])
    probe = _fit(tiny_catalog, tmp_path)
    images = [tiny_catalog.load_image(i) for i in tiny_catalog.sample("cqbench")[:4]]
    probs = probe.probabilities(images)
    assert list(probs) == probe.attributes
    for attribute, p in probs.items():
        assert p.shape == (4, len(probe.vocab[attribute]))
        torch.testing.assert_close(p.sum(1), torch.ones(4))
    named = [{a: probe.vocab[a][int(probs[a][n].argmax())] for a in probs} for n in range(4)]
    assert named == probe.predict(images)
    # a softmax: no value is ruled out outright
    assert all(bool((p > 0).all()) for p in probs.values())


def test_lexicon_state() -> None:
    words = frozenset({"red", "lipstick", "lumora"})
    assert _lexicon_state("", words) == (True, False)
    assert _lexicon_state("Lum", words) == (True, False)
    assert _lexicon_state("Lumora", words) == (True, True)
    assert _lexicon_state("Lumora red, lipstick", words) == (True, True)
    assert _lexicon_state("Lumora, red,", words) == (True, False)
    assert _lexicon_state("Lumora, red, lipstick,", words) == (False, False)  # nothing left
    assert _lexicon_state("red red", words)[0] is False  # each word once
    assert _lexicon_state("blue", words)[0] is False  # not seen
    assert _lexicon_state("red  lipstick", words)[0] is False


def test_messages_keep_the_mllm_prompt_with_words_for_the_image(tiny_catalog: Catalog) -> None:
    template = default_template("i2t")
    image = tiny_catalog.load_image(tiny_catalog.sample("cqbench")[0])
    messages = perceived_messages(build_messages(template, image=image), "Image: colour: red.")
    assert messages[0] == {"role": "system", "content": template.system.strip()}
    # the words come after the instruction and example: every item shares that prefix
    assert messages[1]["content"].endswith("\n\nImage: colour: red.")
    assert messages[1]["content"].startswith(template.instruction.strip()[:40])
    assert template.example in messages[1]["content"]


def test_offline_vlm_decodes_titles_from_the_probe_words(
    tiny_catalog: Catalog, tiny_llm: Path, tmp_path: Path
) -> None:
    vlm = OfflineVisionLM(
        str(tiny_llm),
        cache_dir=str(tmp_path),
        answer_prefix='{"title": "',
        generation={"max_new_tokens": 12, "do_sample": False},
        perception=SMALL,
    )
    assert "offline stand-in" in vlm.describe()["stand_in"]
    vlm.setup(BackendContext(torch.device("cpu"), catalog=tiny_catalog))
    ids = tiny_catalog.sample("cqbench")[:4]
    images = [tiny_catalog.load_image(i) for i in ids]
    requests = [
        Request(i, build_messages(default_template("i2t"), image=im), image=im)
        for i, im in zip(ids, images, strict=True)
    ]
    answers = vlm.generate(requests)
    assert answers == [vlm.generate([r])[0] for r in requests]  # batching changes nothing
    for answer, seen in zip(answers, vlm.probe.perceive(images), strict=True):
        assert answer.startswith('{"title": "')
        title = answer.removeprefix('{"title": "').removesuffix('"}')
        assert _lexicon_state(title, frozenset(seen.words))[0], answer
        if answer.endswith('"}'):
            assert parse_answer(answer, "title").ok


def test_lexicon_constraint_never_leaves_a_started_word_unfinished() -> None:
    """Every text reachable under the constraint that is the start of a word, not yet a word,
    can go on with a token other than the closing quote (the demo's greedy SmolLM2 once ended
    titles as ``Loomberry, L``: ``" L"`` came from another word and nothing finished it)."""
    from transformers import AutoTokenizer

    from mmpc.completion.backends.textllm import smollm2_gguf

    gguf = smollm2_gguf()  # SmolLM2's own tokenizer, read from the packaged GGUF
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    words = ("loomberry", "large", "lime", "dot")  # lower case, as Perception.words
    constraint = LexiconConstraint(tokenizer, [words], 0, tokenizer.eos_token_id)
    lexicon, close = frozenset(words), constraint.close_ids[0]
    frontier, seen, stuck = [[]], set(), []
    while frontier:
        ids = frontier.pop()
        title = tokenizer.decode(ids)
        if title in seen or len(ids) > 8:
            continue
        seen.add(title)
        allowed = constraint(0, torch.tensor(ids, dtype=torch.long))
        if title and not _lexicon_state(title, lexicon)[1] and allowed == [close]:
            stuck.append(title)
        frontier += [[*ids, t] for t in allowed if t != close and t not in constraint.eos_ids]
    assert len(seen) > 20  # the walk went somewhere
    assert stuck == []
