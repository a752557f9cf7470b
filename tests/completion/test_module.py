"""CompletionModule.predict_step through a real Trainer: records, parsing, renders, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from PIL import Image

from mmpc.completion.backends.diffusion import DiffusionBackend
from mmpc.completion.backends.mllm import MLLMBackend
from mmpc.completion.backends.retrieval import RetrievalRenderer, RetrievalTitleBaseline
from mmpc.completion.backends.textllm import TextLLMBackend
from mmpc.completion.backends.title_prompt import TitlePromptBaseline
from mmpc.completion.catalog import Catalog
from mmpc.completion.data import CompletionDataModule
from mmpc.completion.module import CompletionModule, item_seed
from mmpc.completion.parsing import parse_answer
from mmpc.completion.writer import CompletionWriter, output_dir

KEYS = {"item_id", "task", "completer", "output", "raw", "error", "timings"}


def _predict(module: CompletionModule, catalog: Catalog, run: Path, limit: int) -> list[dict]:
    dm = CompletionDataModule(str(catalog.root), task=module.task, limit=limit, batch_size=2)
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CompletionWriter(str(run))],
    )
    trainer.predict(module, datamodule=dm, return_predictions=False)
    path = output_dir(run, module.completer, module.task) / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_item_seed_is_stable_and_distinct() -> None:
    seeds = {item_seed(0, f"SYN-{i:05d}") for i in range(200)}
    assert len(seeds) == 200
    assert all(0 <= s < 2**63 for s in seeds)
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(1, "a")


def test_i2t_records_follow_the_parser(
    tiny_qwen: Path, tiny_catalog: Catalog, tmp_path: Path
) -> None:
    module = CompletionModule(
        completer="tiny-qwen",
        task="i2t",
        generator=MLLMBackend(
            str(tiny_qwen),
            quantization="none",
            compute_dtype="float32",
            generation={"max_new_tokens": 6, "do_sample": False},
        ),
    )
    records = _predict(module, tiny_catalog, tmp_path, limit=3)
    assert [r["item_id"] for r in records] == tiny_catalog.sample("cqbench")[:3]
    for record in records:
        assert set(record) == KEYS
        assert (record["task"], record["completer"]) == ("i2t", "tiny-qwen")
        parsed = parse_answer(record["raw"], "title")
        assert (record["output"], record["error"]) == (parsed.value, parsed.error)
        assert record["timings"]["generate_s"] > 0 and record["timings"]["batch_size"] in (1, 2)
    summary = json.loads((output_dir(tmp_path, "tiny-qwen", "i2t") / "summary.json").read_text())
    assert summary["failed_parses"] == sum(r["error"] is not None for r in records)


def test_baseline_answers_are_not_parsed(tiny_catalog: Catalog, tmp_path: Path) -> None:
    module = CompletionModule(
        completer="retrieval-baseline",
        task="i2t",
        generator=RetrievalTitleBaseline(features="color-histogram"),
    )
    records = _predict(module, tiny_catalog, tmp_path, limit=2)
    titles = set(tiny_catalog.items["title"])
    assert all(r["error"] is None and r["output"] == r["raw"] in titles for r in records)


def test_t2i_renders_seeded_images(
    tiny_gemma: Path, tiny_sd3: Path, tiny_catalog: Catalog, tmp_path: Path
) -> None:
    module = CompletionModule(
        completer="tiny-gemma",
        task="t2i",
        generator=MLLMBackend(
            str(tiny_gemma),
            quantization="none",
            compute_dtype="float32",
            generation={"max_new_tokens": 6, "do_sample": False},
        ),
        renderer=DiffusionBackend(
            str(tiny_sd3),
            dtype="float32",
            num_inference_steps=2,
            max_sequence_length=16,
            height=32,
            width=32,
        ),
        on_parse_failure="title",
    )
    records = _predict(module, tiny_catalog, tmp_path, limit=3)
    out = output_dir(tmp_path, "tiny-gemma", "t2i")
    for record in records:
        assert set(record) == KEYS and "_image" not in record
        parsed = parse_answer(record["raw"], "prompt")
        assert record["output"] == parsed.value
        if parsed.error is not None:
            assert record["error"] == f"{parsed.error}; rendered from the title instead"
        with Image.open(out / "images" / f"{record['item_id']}.png") as image:
            assert image.size == (32, 32)
        assert record["timings"]["render_s"] > 0


def test_t2i_prompt_writer_and_retrieval_renderer(
    tiny_llm: Path, tiny_catalog: Catalog, tmp_path: Path
) -> None:
    module = CompletionModule(
        completer="tiny-llm-retrieval",
        task="t2i",
        generator=TextLLMBackend(
            str(tiny_llm), generation={"max_new_tokens": 4, "do_sample": False}
        ),
        renderer=RetrievalRenderer(),
        on_parse_failure="skip",
    )
    records = _predict(module, tiny_catalog, tmp_path, limit=2)
    images = output_dir(tmp_path, "tiny-llm-retrieval", "t2i") / "images"
    for record in records:
        assert (images / f"{record['item_id']}.png").is_file() == (record["output"] is not None)


def test_title_prompt_baseline_renders_the_cover_of_the_nearest_title(
    tiny_catalog: Catalog, tmp_path: Path
) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from mmpc.completion.backends import TitlePromptBaseline as Exported
    from mmpc.metrics.backbones import minilm_path

    assert Exported is TitlePromptBaseline
    module = CompletionModule(
        completer="title-retrieval",
        task="t2i",
        generator=TitlePromptBaseline(),
        renderer=RetrievalRenderer(),
    )
    records = _predict(module, tiny_catalog, tmp_path, limit=4)
    done = [r["item_id"] for r in records]
    assert done == tiny_catalog.sample("cqbench")[:4]
    # independently: the MiniLM title embedding nearest to the item's own title, among the items
    # outside the completed sample
    refs = [i for i in sorted(tiny_catalog.items.index) if i not in set(done)]
    encoder = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    titles = tiny_catalog.items["title"].astype(str)
    ref_emb = encoder.encode(list(titles[refs]), normalize_embeddings=True)
    images = output_dir(tmp_path, "title-retrieval", "t2i") / "images"
    for record in records:
        item = record["item_id"]
        assert record["output"] == record["raw"] == titles[item] and record["error"] is None
        query = encoder.encode([titles[item]], normalize_embeddings=True)
        nearest = refs[int(np.argmax(ref_emb @ query[0]))]
        with Image.open(images / f"{item}.png") as img:
            got = np.asarray(img.convert("RGB"))
        assert np.array_equal(got, np.asarray(tiny_catalog.load_image(nearest)))


def test_title_prompt_baseline_refuses_requests_without_a_title() -> None:
    from mmpc.completion.backends.base import Request

    baseline = TitlePromptBaseline()
    assert baseline.generate([Request("a", title="Red mug")]) == ["Red mug"]
    with pytest.raises(ValueError, match="cannot do I→T"):
        baseline.generate([Request("a", image=Image.new("RGB", (4, 4)))])


def test_configuration_errors(tiny_llm: Path) -> None:
    writer = TextLLMBackend(str(tiny_llm))
    with pytest.raises(ValueError, match="t2i needs a renderer"):
        CompletionModule(completer="x", task="t2i", generator=writer)
    with pytest.raises(ValueError, match="i2t takes no renderer"):
        CompletionModule(completer="x", task="i2t", generator=writer, renderer=RetrievalRenderer())
    module = CompletionModule(completer="x", task="i2t", generator=writer)
    with pytest.raises(ValueError, match="text-only: cannot do i2t"):
        module._requests({"item_id": ["a"], "image": [Image.new("RGB", (4, 4))]})
