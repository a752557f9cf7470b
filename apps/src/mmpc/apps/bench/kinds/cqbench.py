"""The CQBench stage: per-item content-quality metrics of one completer × task.

I→T (generated title vs original title): TF-IDF cosine and Euclidean similarity, token overlap,
BERTScore F1. T→I (rendered cover vs original cover, the render resized to the original's size,
bilinear, values in [0, 1]): PSNR, SSIM (window 7), MSE, LPIPS, CLIP similarity. Every metric is
the ``mmpc.metrics`` implementation. Offline stand-ins are labelled: BERTScore on the packaged
all-MiniLM-L6-v2 is "BERTScore (MiniLM)", shift-tolerant LPIPS is "ST-LPIPS"; CLIP similarity
without configured weights is reported unavailable, never scored with random weights.

Items whose completion failed get NaN metrics and ``status`` != ``ok``; means leave them out and
the report counts them. For T→I every item with a render is scored, including renders of the
title that ``on_parse_failure: title`` makes for unparsable prompts (the report counts those
parse failures separately).

Output: ``metrics.csv`` (``completer, task, category, item_id, status, <metrics>``, sorted by
item id) and ``metrics.json`` (label, direction and note of each metric, unavailable ones).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mmpc.apps.bench.config import CQBenchConfig
from mmpc.apps.bench.itemlog import ItemLog
from mmpc.apps.bench.stages import StageContext
from mmpc.apps.schema import DEFAULT_METRICS, MetricInfo
from mmpc.metrics.files import atomic_write_json, atomic_write_text

TEXT_KEYS = ("cosine", "euclidean", "overlap", "bertscore")
IMAGE_KEYS = ("psnr", "ssim", "mse", "lpips", "clip")
METRIC_TASK = {m.key: m.task for m in DEFAULT_METRICS}


def metric_infos(cfg: CQBenchConfig) -> tuple[list[MetricInfo], dict[str, str]]:
    """Labels of the configured metrics, and ``{metric key: reason}`` for those not computed."""
    base = {m.key: m for m in DEFAULT_METRICS}
    infos = [base["cosine"], base["euclidean"], base["overlap"]]
    missing: dict[str, str] = {}
    if cfg.bertscore_model == "minilm":
        infos.append(
            MetricInfo(
                "bertscore",
                "BERTScore (MiniLM)",
                "i2t",
                True,
                "all-MiniLM-L6-v2 layer 6 stands in for roberta-large offline; "
                "not comparable with published BERTScore",
            )
        )
    elif cfg.bertscore_model:
        infos.append(base["bertscore"])
    else:
        missing["bertscore"] = "BERTScore not configured (cqbench.bertscore_model is null)"
    infos += [base["psnr"], base["ssim"], base["mse"]]
    if cfg.lpips == "st-lpips":
        infos.append(
            MetricInfo(
                "lpips",
                "ST-LPIPS",
                "t2i",
                False,
                "shift-tolerant LPIPS (stlpips-pytorch) stands in for LPIPS; "
                "not comparable with published LPIPS",
            )
        )
    elif cfg.lpips == "alex":
        infos.append(base["lpips"])
    else:
        missing["lpips"] = "LPIPS not configured (cqbench.lpips is none)"
    if cfg.clip_model:
        infos.append(base["clip"])
    else:
        missing["clip"] = (
            "CLIP similarity unavailable offline: no CLIP weights configured "
            "(set cqbench.clip_model and cqbench.clip_pretrained)"
        )
    return infos, missing


def text_scores(preds: list[str], refs: list[str], cfg: CQBenchConfig) -> dict[str, list[float]]:
    """Per-pair text metrics (lists aligned with ``preds``)."""
    from mmpc.metrics.functional import token_overlap
    from mmpc.metrics.functional.text import tfidf_pair_scores

    pairs = [tfidf_pair_scores(p, r) for p, r in zip(preds, refs, strict=True)]
    out = {
        "cosine": [c for c, _ in pairs],
        "euclidean": [e for _, e in pairs],
        "overlap": token_overlap(preds, refs, reduction="none").tolist(),
    }
    if cfg.bertscore_model:
        from mmpc.metrics.backbones import minilm_path
        from mmpc.metrics.functional import bert_score

        model = str(minilm_path()) if cfg.bertscore_model == "minilm" else cfg.bertscore_model
        out["bertscore"] = bert_score(
            preds,
            refs,
            model=model,
            num_layers=cfg.bertscore_num_layers,
            reduction="none",
            batch_size=cfg.batch_size,
        ).tolist()
    return out


@lru_cache(maxsize=2)
def _lpips_net(kind: str, backbone: str | None) -> Any:
    from mmpc.metrics.backbones import load_lpips_net

    return load_lpips_net(kind, backbone)


@lru_cache(maxsize=1)
def _clip_metric(model: str, pretrained: str | None) -> Any:
    from mmpc.metrics import CLIPImageSimilarity

    return CLIPImageSimilarity(model=model, pretrained=pretrained, reduction="none")


def image_scores(gen: list[Path], refs: list[Path], cfg: CQBenchConfig) -> dict[str, list[float]]:
    """Per-pair image metrics; pairs are scored one reference size at a time."""
    from mmpc.metrics.functional import (
        lpips,
        mean_squared_error,
        peak_signal_noise_ratio,
        structural_similarity,
    )
    from mmpc.metrics.functional.image_io import prepare_image_pair

    n = len(gen)
    out: dict[str, list[float]] = {k: [math.nan] * n for k in IMAGE_KEYS}
    prepared = [prepare_image_pair(g, r) for g, r in zip(gen, refs, strict=True)]
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, (_, t) in enumerate(prepared):
        by_size.setdefault(tuple(t.shape), []).append(i)
    for idx in by_size.values():
        preds = torch.cat([prepared[i][0] for i in idx])  # (B, 3, H, W)
        target = torch.cat([prepared[i][1] for i in idx])  # (B, 3, H, W)
        values: dict[str, torch.Tensor] = {
            "psnr": peak_signal_noise_ratio(preds, target, reduction="none"),
            "ssim": structural_similarity(preds, target, reduction="none"),
            "mse": mean_squared_error(preds, target, reduction="none"),
        }
        if cfg.lpips in ("st-lpips", "alex"):
            net = _lpips_net(cfg.lpips, cfg.lpips_backbone)
            with torch.no_grad():
                values["lpips"] = lpips(preds, target, net=net, reduction="none")
        if cfg.clip_model:
            metric = _clip_metric(cfg.clip_model, cfg.clip_pretrained)
            metric.reset()
            metric.update(preds, target)
            values["clip"] = metric.compute()
        for key, tensor in values.items():
            for j, i in enumerate(idx):
                out[key][i] = float(tensor[j])
    return out


def cqbench_stage(
    cfg: CQBenchConfig,
    completer: str,
    task: str,
    catalog_dir: Callable[[StageContext], Path],
    records_dir: Callable[[StageContext], Path],
) -> Callable[[StageContext], dict[str, int]]:
    """A stage function scoring ``completer``'s ``task`` outputs against the catalogue."""

    def run(ctx: StageContext) -> dict[str, int]:
        from mmpc.completion.catalog import Catalog
        from mmpc.completion.writer import read_records

        catalog = Catalog.open(catalog_dir(ctx), verify_hashes=False)
        out_dir = records_dir(ctx)
        records = read_records(out_dir)
        infos, missing = metric_infos(cfg)
        keys = [m.key for m in infos if m.task == task]
        log = ItemLog(ctx.out / "log.jsonl")
        todo = [i for i in sorted(records) if i not in log.done()]
        bar = ctx.progress(
            total=len(records), initial=len(records) - len(todo), desc=f"cqbench {completer}/{task}"
        )
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start : start + cfg.batch_size]
            rows = _score_chunk(chunk, records, catalog, out_dir, task, cfg)
            for item_id, row in zip(chunk, rows, strict=True):
                log.append(
                    {
                        "completer": completer,
                        "task": task,
                        "item_id": item_id,
                        "category": str(catalog.items.at[item_id, "category"]),
                        **{k: row.get(k, math.nan) for k in keys},
                        "status": row["status"],
                    }
                )
            bar.update(len(chunk))
        bar.close()
        n = log.finalize(ctx.out / "items.jsonl")
        frame = pd.DataFrame(
            log.records(), columns=["completer", "task", "category", "item_id", "status", *keys]
        )
        atomic_write_text(ctx.out / "metrics.csv", frame.to_csv(index=False))
        (ctx.out / "items.jsonl").unlink()
        atomic_write_json(
            ctx.out / "metrics.json",
            {
                "metrics": [vars(m) for m in infos if m.task == task],
                "unavailable": {k: v for k, v in missing.items() if METRIC_TASK[k] == task},
            },
            sort_keys=True,
            default=str,
        )
        ok = int((frame["status"] == "ok").sum())
        return {"items": n, "scored": ok, "not_scored": n - ok}

    return run


def _score_chunk(
    chunk: list[str],
    records: dict[str, dict[str, Any]],
    catalog: Any,
    out_dir: Path,
    task: str,
    cfg: CQBenchConfig,
) -> list[dict[str, Any]]:
    from mmpc.completion.writer import image_path

    rows: list[dict[str, Any]] = []
    scored: list[int] = []
    for item_id in chunk:
        rec = records[item_id]
        status = "ok"
        if task == "i2t" and (rec.get("error") or not rec.get("output")):
            status = "parse_failure" if rec.get("output") is None else "error"
        elif task == "t2i" and not image_path(out_dir, item_id).exists():
            status = "parse_failure" if rec.get("output") is None else "missing_render"
        rows.append({"status": status})
        if status == "ok":
            scored.append(len(rows) - 1)
    if not scored:
        return rows
    ids = [chunk[i] for i in scored]
    if task == "i2t":
        preds = [str(records[i]["output"]) for i in ids]
        refs = [str(catalog.items.at[i, "title"]) for i in ids]
        values = text_scores(preds, refs, cfg)
    else:
        gen = [image_path(out_dir, i) for i in ids]
        refs = [catalog.image_path(i) for i in ids]
        values = image_scores(gen, refs, cfg)
    for j, row_index in enumerate(scored):
        for key, vals in values.items():
            rows[row_index][key] = vals[j]
    return rows
