"""The BERTScore backbone: a transformers encoder cut to the layer ``bert-score`` reads.

:func:`load_backbone` loads a local folder, a Hugging Face id from the local cache only (unless
asked otherwise), or a ``(model, tokenizer)`` factory, keeps the first ``num_layers`` transformer
blocks (bert-score's tuned layer for known ids, e.g. 17 of ``roberta-large``) and caches the last
two loads. Weights that are not here raise :class:`~mmpc.metrics.errors.MissingWeightsError` in
one line saying how to provide a folder; nothing is ever scored with random weights. The scoring
itself is :mod:`mmpc.metrics.functional.bertscore`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmpc.metrics.errors import MissingWeightsError

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_NUM_LAYERS",
    "BERTScoreBackbone",
    "ModelFactory",
    "bert_score_package_model_type",
    "load_backbone",
]

DEFAULT_MODEL = "roberta-large"
# Layers bert-score uses for a few common backbones (its tuned defaults).
KNOWN_NUM_LAYERS: dict[str, int] = {
    "roberta-large": 17,
    "roberta-base": 10,
    "bert-base-uncased": 9,
    "distilbert-base-uncased": 5,
    "microsoft/deberta-xlarge-mnli": 40,
}
ModelFactory = Callable[[], tuple[nn.Module, Any]]


# Substrings of ``model_type`` that make the ``bert-score`` package pick another model class or
# lower-case the input (bert_score.utils.get_model / get_tokenizer / sent_encode).
_BERT_SCORE_TRIGGERS = ("t5", "uncased")


def bert_score_package_model_type(folder: str | os.PathLike[str]) -> str:
    """A path to ``folder`` that the reference ``bert-score`` package reads as what it is.

    ``bert-score`` chooses the model class from substrings of ``model_type``: a local path such
    as ``/tmp/tmp.aKt5x/.venv/.../model`` contains ``"t5"``, and it then loads the BERT weights
    into a T5 encoder, randomly initialising what does not fit, with only a warning. For
    side-by-side comparisons with the package, this returns ``folder`` when its path is free of
    those substrings, else a symlink to it in a fresh temporary folder whose path is (removed
    at exit). Our own :func:`bert_score` never looks at the path's text.
    """
    import atexit
    import shutil
    import tempfile

    path = str(Path(folder).resolve())
    if not any(t in path for t in _BERT_SCORE_TRIGGERS):  # its "scibert" prefix test never
        return path  # matches an absolute path
    for _ in range(100):
        base = tempfile.mkdtemp(prefix="mmpc-bertscore-")
        link = Path(base) / "model"
        if not any(t in str(link) for t in _BERT_SCORE_TRIGGERS):
            link.symlink_to(path, target_is_directory=True)
            atexit.register(shutil.rmtree, base, ignore_errors=True)
            return str(link)
        shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError("could not make a temporary path free of bert-score's model-type triggers")


@dataclass
class BERTScoreBackbone:
    """A loaded backbone: ``model`` returns layer ``num_layers`` as its output when
    ``truncated``; otherwise ``hidden_states[num_layers]`` is read (model left unmodified)."""

    model: nn.Module
    tokenizer: Any
    num_layers: int
    truncated: bool
    name: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _layer_list(model: nn.Module) -> tuple[nn.Module, str] | None:
    """The module that owns the transformer block list, and the list's attribute name."""
    for owner_path, attr in (("encoder", "layer"), ("transformer", "layer"), ("", "layers")):
        owner = getattr(model, owner_path, None) if owner_path else model
        if isinstance(getattr(owner, attr, None), nn.ModuleList):
            return owner, attr
    return None


def _resolve_num_layers(model: nn.Module, name: str, num_layers: int | None) -> int:
    total = getattr(model.config, "num_hidden_layers", None)
    if num_layers is None:
        num_layers = KNOWN_NUM_LAYERS.get(name, total)
    if num_layers is None or total is None or not 0 <= num_layers <= total:
        raise ValueError(f"BERTScore backbone {name}: num_layers={num_layers} not in [0, {total}]")
    return num_layers


def _from_pretrained(name: str, local_files_only: bool, cache_dir: str | None) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": local_files_only, "cache_dir": cache_dir}
    looks_like_path = os.sep in name or name.startswith(".") or Path(name).exists()
    if looks_like_path and not Path(name).is_dir():
        raise MissingWeightsError(
            f"BERTScore backbone folder {name} does not exist; pass model='/path/to/model' "
            "(a folder with config.json, the weights and the tokenizer files)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModel.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        where = "folder" if looks_like_path else "is not in the local Hugging Face cache and"
        raise MissingWeightsError(
            f"BERTScore backbone '{name}' {where} cannot be loaded without downloading "
            f"({type(exc).__name__}); fetch it where a network is reachable and pass "
            f"model='/path/to/{Path(name).name}' (a folder with config.json, weights and "
            "tokenizer files)"
        ) from exc
    return model, tokenizer


@lru_cache(maxsize=2)
def _load_cached(
    name: str, num_layers: int | None, device: str, local_files_only: bool, cache_dir: str | None
) -> BERTScoreBackbone:
    model, tokenizer = _from_pretrained(name, local_files_only, cache_dir)
    layers = _resolve_num_layers(model, name, num_layers)
    # bert-score keeps only the encoder of encoder-decoder models.
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        model = model.encoder
    found = _layer_list(model)
    if found is not None:
        owner, attr = found
        setattr(owner, attr, nn.ModuleList(list(getattr(owner, attr))[:layers]))
    model.eval().requires_grad_(False).to(device)
    return BERTScoreBackbone(model, tokenizer, layers, found is not None, name)


def load_backbone(
    model: str | os.PathLike[str] | ModelFactory | BERTScoreBackbone = DEFAULT_MODEL,
    num_layers: int | None = None,
    device: str | torch.device | None = None,
    local_files_only: bool = True,
    cache_dir: str | None = None,
) -> BERTScoreBackbone:
    """Load (and cache) a BERTScore backbone.

    Args:
        model: A Hugging Face id (looked up in the local cache only, unless
            ``local_files_only=False``), a local folder, a callable returning
            ``(model, tokenizer)``, or an already loaded :class:`BERTScoreBackbone`.
        num_layers: Layer whose output is the embedding; default: bert-score's choice for known
            ids (roberta-large: 17), else the last layer.
        device: Where the model runs; default CUDA if available, else CPU. A callable's model is
            used where it already is.
        local_files_only: Never touch the network (default). The error for missing weights is
            then immediate.
        cache_dir: Hugging Face cache folder to look in (default: the usual one).

    Raises:
        MissingWeightsError: The weights cannot be loaded here; the message says how to provide
            a local folder.
    """
    if isinstance(model, BERTScoreBackbone):
        return model
    if callable(model):
        net, tokenizer = model()
        net.eval()
        name = getattr(net.config, "name_or_path", "") or type(net).__name__
        layers = _resolve_num_layers(net, name, num_layers)
        return BERTScoreBackbone(net, tokenizer, layers, False, name)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _load_cached(os.fspath(model), num_layers, str(device), local_files_only, cache_dir)
