"""BERTScore (Zhang et al., 2020) implemented directly on transformers, equal to ``bert-score``.

For a candidate ``x`` (pred) and a reference ``y`` (target), with ``x_i``, ``y_j`` the
l2-normalised token embeddings of layer ``num_layers`` of the backbone (special tokens included
in the matching) and ``w`` per-token weights (1, or idf; always 0 for the [CLS]/[SEP] ids):

- ``P = Σ_i w(x_i) max_j <x_i, y_j> / Σ_i w(x_i)``
- ``R = Σ_j w(y_j) max_i <x_i, y_j> / Σ_j w(y_j)``
- ``F1 = 2 P R / (P + R)``

No baseline rescaling (as in the published MMPCBench code). If either text is empty after
``strip()`` (no weighted token) P, R and F1 are 0.0, as ``bert-score`` sets them.

How texts are turned into embeddings, matching ``bert_score.score`` (v0.3.13):

- each text is ``strip()``-ed and encoded with special tokens, truncated to the tokenizer's
  ``model_max_length``; byte-level BPE tokenizers (RoBERTa, GPT-2) get a leading space, which is
  what ``bert-score``'s ``add_prefix_space=True`` means (transformers 5 silently ignores that
  keyword in ``encode()``, so ``bert-score`` 0.3.13 under transformers 5 tokenizes RoBERTa
  without it; this module keeps the intended behaviour, which transformers 4 honoured);
- the model keeps only its first ``num_layers`` layers (``roberta-large``: 17, as ``bert-score``
  picks for it); the output of the last kept layer is the embedding;
- idf is off by default; ``idf=True`` computes ``idf(t) = ln((M + 1) / (df(t) + 1))`` over the
  ``M`` reference texts (unseen ids: ``ln(M + 1)``), or pass a precomputed ``{token_id: idf}``.

The greedy match runs over real tokens only (padding masked out). This is exactly what the
published MMPCBench code computed: it called BERTScore one pair at a time, where no padding exists.
``bert_score.score`` on a *batch* differs slightly: it zero-fills the padding of its similarity
matrix before the max, so a token whose best cosine is negative scores 0 instead whenever its
partner text is padded in that batch (a batch-composition effect; seen with MiniLM on unrelated
pairs, e.g. 0.0309 vs 0.0285 recall). The parity tests compare with ``bert_score.score(...,
batch_size=1)``, the per-pair semantics, to float precision.

Speed: unique texts are encoded once, sorted by token length so that batches carry little
padding, under ``torch.inference_mode``; the greedy matching runs on length-sorted pair batches.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from mmpc.metrics.functional.bertscore_backbone import (
    DEFAULT_MODEL,
    BERTScoreBackbone,
    ModelFactory,
    load_backbone,
)

__all__ = ["bert_score", "bert_score_idf"]

OUTPUTS = ("f1", "precision", "recall", "all")


def _prefix_space(tokenizer: Any) -> bool:
    """Whether the tokenizer is byte-level BPE (RoBERTa/GPT-2, slow or fast class)."""
    import transformers

    names = ("GPT2Tokenizer", "RobertaTokenizer", "GPT2TokenizerFast", "RobertaTokenizerFast")
    classes = tuple(c for c in (getattr(transformers, n, None) for n in names) if c is not None)
    return isinstance(tokenizer, classes)


def _encode(texts: Sequence[str], tokenizer: Any) -> list[list[int]]:
    """Token ids with special tokens, as bert-score's ``sent_encode`` (see module docstring)."""
    max_len = tokenizer.model_max_length
    max_len = max_len if max_len < 1_000_000 else None
    prefix = " " if _prefix_space(tokenizer) else ""
    stripped = [t.strip() for t in texts]
    inputs = [prefix + t if t else t for t in stripped]
    encoded = tokenizer(
        inputs, add_special_tokens=True, truncation=max_len is not None, max_length=max_len
    )
    return [list(ids) for ids in encoded["input_ids"]]


def bert_score_idf(references: Sequence[str], tokenizer: Any) -> dict[int, float]:
    """idf over reference texts: ``ln((M + 1) / (df + 1))`` per token id (bert-score's formula).

    Ids never seen in a reference weigh ``ln(M + 1)`` when scoring (see :func:`bert_score`).
    """
    df: Counter[int] = Counter()
    for ids in _encode([_as_text(t) for t in references], tokenizer):
        df.update(set(ids))
    m = len(references)
    return {tok: math.log((m + 1) / (c + 1)) for tok, c in df.items()}


def _as_text(text: object) -> str:
    return text if isinstance(text, str) else ""


def _token_weights(
    ids: list[int], tokenizer: Any, idf: Mapping[int, float] | None, unseen: float
) -> Tensor:
    if idf is None:
        special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
        return torch.tensor([0.0 if t in special else 1.0 for t in ids])
    return torch.tensor([float(idf.get(t, unseen)) for t in ids])


@torch.inference_mode()
def _embed(
    backbone: BERTScoreBackbone, encoded: list[list[int]], batch_size: int, progress: bool
) -> list[Tensor]:
    """Unit-norm token embeddings (L_i, D) per text, batches sorted by length."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    pad_id = backbone.tokenizer.pad_token_id or 0
    device = backbone.device
    out: list[Tensor] = [torch.empty(0)] * len(encoded)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="BERTScore embeddings", disable=not progress):
        idx = order[start : start + batch_size]
        lens = [len(encoded[i]) for i in idx]
        ids = torch.full((len(idx), max(lens)), pad_id, dtype=torch.long)  # (B, L)
        for row, i in enumerate(idx):
            ids[row, : lens[row]] = torch.tensor(encoded[i])
        mask = (torch.arange(ids.shape[1]) < torch.tensor(lens)[:, None]).long()  # (B, L)
        ids, mask = ids.to(device), mask.to(device)
        if backbone.truncated:
            hidden = backbone.model(input_ids=ids, attention_mask=mask)[0]  # (B, L, D)
        else:
            states = backbone.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = states.hidden_states[backbone.num_layers]  # (B, L, D)
        hidden = F.normalize(hidden.float(), dim=-1)
        for row, i in enumerate(idx):
            out[i] = hidden[row, : lens[row]]
    return out


def _greedy_match(
    pred_emb: list[Tensor],
    target_emb: list[Tensor],
    pred_w: list[Tensor],
    target_w: list[Tensor],
    batch_size: int,
) -> Tensor:
    """P, R, F1 per pair as float32 (N, 3), pair batches sorted by length."""
    n = len(pred_emb)
    order = sorted(range(n), key=lambda i: pred_emb[i].shape[0] + target_emb[i].shape[0])
    out = torch.zeros(n, 3)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        p = pad_sequence([pred_emb[i] for i in idx], batch_first=True)  # (B, Lp, D)
        t = pad_sequence([target_emb[i] for i in idx], batch_first=True)  # (B, Lt, D)
        pw = pad_sequence([pred_w[i] for i in idx], batch_first=True).to(p.device)  # (B, Lp)
        tw = pad_sequence([target_w[i] for i in idx], batch_first=True).to(p.device)  # (B, Lt)
        p_len = torch.tensor([pred_emb[i].shape[0] for i in idx], device=p.device)
        t_len = torch.tensor([target_emb[i].shape[0] for i in idx], device=p.device)
        p_mask = torch.arange(p.shape[1], device=p.device) < p_len[:, None]  # (B, Lp)
        t_mask = torch.arange(t.shape[1], device=p.device) < t_len[:, None]  # (B, Lt)
        sim = torch.bmm(p, t.transpose(1, 2))  # (B, Lp, Lt)
        best_for_pred = sim.masked_fill(~t_mask[:, None, :], -2.0).amax(dim=2)  # (B, Lp)
        best_for_target = sim.masked_fill(~p_mask[:, :, None], -2.0).amax(dim=1)  # (B, Lt)
        pw_sum, tw_sum = pw.sum(dim=1), tw.sum(dim=1)  # (B,)
        precision = (best_for_pred * pw).sum(dim=1) / pw_sum
        recall = (best_for_target * tw).sum(dim=1) / tw_sum
        empty = (pw_sum == 0) | (tw_sum == 0)
        precision = precision.masked_fill(empty, 0.0)
        recall = recall.masked_fill(empty, 0.0)
        f1 = (2 * precision * recall / (precision + recall)).nan_to_num(nan=0.0)
        out[idx] = torch.stack([precision, recall, f1], dim=1).float().cpu()
    return out


def _bert_score_update(
    preds: Sequence[str],
    target: Sequence[str],
    backbone: BERTScoreBackbone,
    idf: bool | Mapping[int, float] = False,
    batch_size: int = 64,
    progress: bool = False,
) -> Tensor:
    """Per-pair ``(P, R, F1)`` as float32 (N, 3)."""
    if isinstance(preds, str):
        preds = [preds]
    if isinstance(target, str):
        target = [target]
    preds, target = [_as_text(t) for t in preds], [_as_text(t) for t in target]
    if len(preds) != len(target):
        raise ValueError(f"preds has {len(preds)} texts but target has {len(target)}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not preds:
        return torch.zeros(0, 3)
    tokenizer = backbone.tokenizer
    idf_map: Mapping[int, float] | None = None
    unseen = math.log(len(target) + 1)
    if idf is True:
        idf_map = bert_score_idf(target, tokenizer)
    elif isinstance(idf, Mapping):
        idf_map = idf
    unique = list(dict.fromkeys(preds + target))
    position = {text: i for i, text in enumerate(unique)}
    encoded = _encode(unique, tokenizer)
    embeddings = _embed(backbone, encoded, batch_size, progress)
    weights = [_token_weights(ids, tokenizer, idf_map, unseen) for ids in encoded]
    pi = [position[t] for t in preds]
    ti = [position[t] for t in target]
    return _greedy_match(
        [embeddings[i] for i in pi],
        [embeddings[i] for i in ti],
        [weights[i] for i in pi],
        [weights[i] for i in ti],
        batch_size,
    )


def _bert_score_compute(prf: Tensor, output: str, reduction: str) -> Tensor | dict[str, Tensor]:
    """Select P/R/F1 from (N, 3) and reduce ("mean" or "none")."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    columns = {"precision": prf[:, 0], "recall": prf[:, 1], "f1": prf[:, 2]}
    if reduction == "mean":
        columns = {
            k: v.mean() if v.numel() else torch.tensor(float("nan")) for k, v in columns.items()
        }
    return columns if output == "all" else columns[output]


def bert_score(
    preds: Sequence[str],
    target: Sequence[str],
    model: str | os.PathLike[str] | ModelFactory | BERTScoreBackbone = DEFAULT_MODEL,
    num_layers: int | None = None,
    idf: bool | Mapping[int, float] = False,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    output: str = "f1",
    reduction: str = "mean",
    local_files_only: bool = True,
    progress: bool = False,
) -> Tensor | dict[str, Tensor]:
    """BERTScore of generated texts against references (formulas in the module docstring).

    Args:
        preds: Generated (candidate) texts, length N.
        target: Reference texts, length N.
        model: Backbone: a Hugging Face id (default ``"roberta-large"``, from the local cache
            only), a local folder (offline: :func:`mmpc.metrics.backbones.minilm_path` with
            ``num_layers=6``),
            a callable returning ``(model, tokenizer)``, or a loaded :class:`BERTScoreBackbone`.
        num_layers: Layer used; default bert-score's choice for known ids, else the last.
        idf: ``False`` (default, as bert-score), ``True`` (idf over ``target``) or a
            ``{token_id: idf}`` mapping (ids absent from it weigh ``ln(N + 1)``).
        batch_size: Texts per forward pass, and pairs per matching batch.
        device: Device for a model loaded from an id/folder (default CUDA if available).
        output: ``"f1"`` (default), ``"precision"``, ``"recall"`` or ``"all"`` (a dict).
        reduction: ``"mean"`` or ``"none"`` (float32 (N,) per item).
        local_files_only: Never download (default). Missing weights raise at once.
        progress: Show a tqdm bar over the embedding batches.

    Raises:
        MissingWeightsError: The backbone's weights are not available here.
    """
    backbone = load_backbone(model, num_layers, device, local_files_only)
    prf = _bert_score_update(preds, target, backbone, idf, batch_size, progress)
    return _bert_score_compute(prf, output, reduction)
