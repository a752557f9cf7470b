"""Tiny random policies for the GRPO tests: a word-level tokenizer with a chat template and a
2-layer Llama built from a real ``LlamaConfig``, saved as an ordinary Hugging Face folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

WORDS = [
    "{",
    "}",
    '"',
    ":",
    ",",
    "title",
    "prompt",
    "a",
    "red",
    "blue",
    "ceramic",
    "mug",
    "lamp",
    "photo",
    "product",
    "studio",
    "light",
    "white",
    "background",
    "yes",
    "no",
    "system",
    "user",
    "assistant",
]
SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama + the word-level tokenizer to ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
        initializer_range=0.2,  # logits with some range, so a LoRA can move them far
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The dev box has two shared cores: one intra-op thread is several times faster here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def items() -> list[dict[str, object]]:
    return [
        {"item_id": "i1", "title": "red ceramic mug", "category": "Home"},
        {"item_id": "i2", "title": "blue lamp", "category": "Home"},
    ]


@pytest.fixture(scope="session")
def short_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short t2i template (few tokens), so the tiny-model tests stay fast on two cores."""
    path = tmp_path_factory.mktemp("template") / "t2i_short.yaml"
    path.write_text(
        "system: product photo\n"
        "instruction: 'prompt : {title}'\n"
        'example: \'{"prompt": "a red mug"}\'\n'
        "key: prompt\n",
        encoding="utf-8",
    )
    return path
