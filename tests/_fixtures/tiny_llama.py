"""A tiny random policy: a word-level tokenizer with a chat template and a 2-layer Llama built
from a real ``LlamaConfig``, saved as an ordinary Hugging Face folder.

Shared by tests/grpo (the GRPO tests) and tests/apps (the ``mmpc grpo`` CLI tests).
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["build_tiny_llama", "build_tokenizer", "write_short_template"]

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


def write_short_template(path: Path) -> Path:
    """Write a short t2i template (few tokens) to ``path``, so tiny-model tests stay fast."""
    path.write_text(
        "system: product photo\n"
        "instruction: 'prompt : {title}'\n"
        'example: \'{"prompt": "a red mug"}\'\n'
        "key: prompt\n",
        encoding="utf-8",
    )
    return path
