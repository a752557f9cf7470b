"""Read a bench run folder into :class:`ReportInputs` (the layout of ``mmpc.apps.bench``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mmpc.apps.report.data import GalleryItem, GRPORun, ReportInputs
from mmpc.apps.schema import (
    DEFAULT_METRICS,
    GT,
    MANIFEST,
    REC_METRICS,
    MetricInfo,
    ReportConfig,
)


class StageOutcome(Protocol):
    """How a stage of this run ended (``mmpc.apps.bench.stages.StageResult`` is one)."""

    name: str
    status: str
    duration_s: float
    reason: str


_LABELS = {m.key: m.label for m in DEFAULT_METRICS}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _finished(stage_dir: Path) -> bool:
    return (stage_dir / MANIFEST).is_file()


def _catalog_root(run: Path) -> Path | None:
    src = _read_json(run / "catalog" / "source.json")
    if src.get("path"):
        return Path(src["path"])
    root = run / "catalog" / "catalogue"
    return root if root.is_dir() else None


def _catalog_summary(run: Path) -> pd.DataFrame | None:
    """Per category: users, items, interactions, CQBench and GRPO items of the run's catalogue."""
    root = _catalog_root(run)
    if root is None or not _finished(run / "catalog"):
        return None
    from mmpc.completion.catalog import Catalog  # lazy: pyarrow/PIL only when a run has one

    rows = Catalog.open(root, verify_hashes=False).summary()
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "category"
    return frame[["users", "items", "interactions", "cqbench", "grpo"]]


def _cq(run: Path) -> tuple[pd.DataFrame | None, tuple[MetricInfo, ...], dict[str, str]]:
    frames, infos, missing = [], {}, {}
    for path in sorted((run / "cqbench").glob("*/*/metrics.csv")):
        if not _finished(path.parent):
            continue
        frames.append(pd.read_csv(path, dtype={"item_id": str}))
        meta = _read_json(path.parent / "metrics.json")
        for m in meta.get("metrics", []):
            infos[m["key"]] = MetricInfo(**m)
        for key, reason in meta.get("unavailable", {}).items():
            missing[f"metric {_LABELS.get(key, key)}"] = reason
    order = [m.key for m in DEFAULT_METRICS]
    ordered = tuple(
        sorted(infos.values(), key=lambda m: order.index(m.key) if m.key in order else len(order))
    )
    if not frames:
        return None, ordered or DEFAULT_METRICS, missing
    return pd.concat(frames, ignore_index=True), ordered, missing


def _rec(run: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    users_frames = []
    base = run / "recbench"
    tasks_with_conditions: set[str] = set()
    for path in sorted(base.glob("*/*/*/seed*/users.csv")):
        model, task, cond = path.parts[-5], path.parts[-4], path.parts[-3]
        if not _finished(path.parent):
            continue
        kind = "imputation" if cond.startswith("imp-") else "completer"
        frame = pd.read_csv(path, dtype={"user_id": str})
        users_frames.append(
            frame.assign(
                model=model,
                task=task,
                condition=cond.removeprefix("imp-"),
                kind=kind,
                seed=int(path.parent.name.removeprefix("seed")),
            )
        )
        tasks_with_conditions.add(task)
    for path in sorted(base.glob("*/gt/seed*/users.csv")):
        if not _finished(path.parent):
            continue
        frame = pd.read_csv(path, dtype={"user_id": str})
        for task in sorted(tasks_with_conditions):
            users_frames.append(
                frame.assign(
                    model=path.parts[-4],
                    task=task,
                    condition=GT,
                    kind="gt",
                    seed=int(path.parent.name.removeprefix("seed")),
                )
            )
    if not users_frames:
        return None, None
    users = pd.concat(users_frames, ignore_index=True)
    keys = ["model", "task", "condition", "kind", "seed", "category"]
    rec = users.groupby(keys, as_index=False)[list(REC_METRICS)].mean()
    return rec, users


def _counts(run: Path, cq: pd.DataFrame | None) -> pd.DataFrame | None:
    rows = []
    for rec_path in sorted((run / "complete").glob("*/*/completion/*/*/records.jsonl")):
        stage = rec_path.parents[3]
        if not _finished(stage):
            continue
        completer, task = rec_path.parts[-3], rec_path.parts[-2]
        records = [json.loads(line) for line in rec_path.read_text().splitlines() if line]
        parse = sum(1 for r in records if r.get("output") is None)
        other = sum(1 for r in records if r.get("output") is not None and r.get("error"))
        row = {
            "completer": completer,
            "task": task,
            "items": len(records),
            "completed": len(records) - parse - other,
            "parse_failures": parse,
            "other_errors": other,
        }
        if cq is not None:
            sub = cq[(cq["completer"] == completer) & (cq["task"] == task)]
            row["not_scored"] = int((sub["status"] != "ok").sum())
            if task == "t2i" and "lpips" in sub:
                row["lpips_skipped_small"] = int(
                    ((sub["status"] == "ok") & sub["lpips"].isna()).sum()
                )
        rows.append(row)
    return pd.DataFrame(rows).fillna(0) if rows else None


def _served(run: Path, config: dict[str, Any]) -> pd.DataFrame | None:
    """Per served completer × task: requests (items + retries), retries, the server's token
    counts and, with ``price_per_million_tokens`` in the completer's config, the cost."""
    prices = {
        str(c.get("name")): c.get("price_per_million_tokens")
        for c in config.get("completers") or []
    }
    rows = []
    for rec_path in sorted((run / "complete").glob("*/*/completion/*/*/records.jsonl")):
        if not _finished(rec_path.parents[3]):
            continue
        records = [json.loads(line) for line in rec_path.read_text().splitlines() if line]
        served = [r["served"] for r in records if isinstance(r.get("served"), dict)]
        if not served:
            continue
        retries = sum(int(s.get("retries") or 0) for s in served)
        row: dict[str, Any] = {
            "completer": rec_path.parts[-3],
            "task": rec_path.parts[-2],
            "items": len(records),
            "requests": len(served) + retries,
            "retries": retries,
            "prompt_tokens": sum(
                int((s.get("usage") or {}).get("prompt_tokens", 0)) for s in served
            ),
            "completion_tokens": sum(
                int((s.get("usage") or {}).get("completion_tokens", 0)) for s in served
            ),
        }
        price = prices.get(row["completer"])
        if price:
            row["cost_usd"] = (
                row["prompt_tokens"] * float(price.get("prompt", 0.0))
                + row["completion_tokens"] * float(price.get("completion", 0.0))
            ) / 1e6
        rows.append(row)
    return pd.DataFrame(rows) if rows else None


def _grpo_runs(run: Path, config: dict[str, Any], status: dict[str, Any]) -> list[GRPORun]:
    """The configured GRPO stages: their logs when finished, else their status and reason."""
    out = []
    for spec in config.get("grpo") or []:
        completer, task = str(spec["completer"]), str(spec["task"])
        stage = run / "grpo" / completer / task
        info = status.get(f"grpo/{completer}/{task}", {})
        if _finished(stage) and (stage / "metrics.csv").is_file():
            log = pd.read_csv(stage / "metrics.csv")
            out.append(GRPORun(completer, task, log, str(info.get("status", "ran"))))
        else:
            state = str(info.get("status", "not run"))
            out.append(GRPORun(completer, task, None, state, str(info.get("reason", ""))))
    return out


def _gallery(run: Path, n: int) -> list[GalleryItem]:
    root = _catalog_root(run)
    if root is None or n <= 0 or not (root / "items.parquet").is_file():
        return []
    items = pd.read_parquet(root / "items.parquet").set_index("item_id", drop=False)
    out = []
    for rec_path in sorted((run / "complete").glob("*/*/completion/*/*/records.jsonl")):
        completer, task = rec_path.parts[-3], rec_path.parts[-2]
        records = [json.loads(line) for line in rec_path.read_text().splitlines() if line]
        good = sorted((r for r in records if r.get("output")), key=lambda r: r["item_id"])
        for r in good[:n]:
            item = items.loc[r["item_id"]]
            gen_img = rec_path.parent / "images" / f"{r['item_id']}.png"
            out.append(
                GalleryItem(
                    r["item_id"],
                    str(item["category"]),
                    completer,
                    task,
                    str(item["title"]),
                    str(r["output"]),
                    root / str(item["image"]),
                    gen_img if task == "t2i" and gen_img.exists() else None,
                )
            )
    return out


def _stage_times(run: Path, status: dict[str, Any]) -> pd.DataFrame | None:
    rows = []
    for name, info in status.items():
        man = _read_json(run / name / MANIFEST)
        rows.append(
            {
                "stage": name,
                "status": info.get("status", ""),
                "seconds (last run)": float(man.get("duration_s", np.nan)),
                "seconds (this run)": float(info.get("duration_s", np.nan)),
            }
        )
    return pd.DataFrame(rows) if rows else None


def load_run(
    run: Path | str, results: Sequence[StageOutcome] | None = None, cfg: ReportConfig | None = None
) -> ReportInputs:
    """Everything the report needs from run folder ``run`` (missing parts stay None)."""
    run = Path(run)
    cfg = cfg or ReportConfig()
    if results is not None:
        status = {
            r.name: {"status": r.status, "reason": r.reason, "duration_s": r.duration_s}
            for r in results
        }
    else:
        status = _read_json(run / "status.json")
    catalog_man = _read_json(run / "catalog" / MANIFEST)
    synthetic = bool(catalog_man.get("notes", {}).get("synthetic", True))
    cq, metrics, missing = _cq(run)
    rec, users = _rec(run)
    not_run = {n: i for n, i in status.items() if i.get("status") in ("unavailable", "failed")}
    # Root causes only; the stages that merely needed them are summarised in one row.
    unavailable = {
        n: i["reason"]
        for n, i in not_run.items()
        if not str(i.get("reason", "")).startswith("needs ")
    }
    dependants = len(not_run) - len(unavailable)
    if dependants:
        unavailable["(dependent stages)"] = (
            f"{dependants} stage(s) not run because a stage they read is listed here"
        )
    unavailable.update(missing)
    grpo = None
    if cfg.grpo_log:
        grpo = pd.read_csv(cfg.grpo_log)
    config = _read_json(run / "bench_config.json")
    return ReportInputs(
        title=f"MMPCBench report: {config.get('name', run.name)}",
        synthetic=synthetic,
        metrics=metrics,
        catalog=_catalog_summary(run),
        cq=cq,
        rec=rec,
        rec_users=users,
        grpo_log=grpo,
        grpo_runs=_grpo_runs(run, config, status),
        gallery=_gallery(run, cfg.gallery),
        counts=_counts(run, cq),
        served=_served(run, config),
        unavailable=unavailable,
        stage_times=_stage_times(run, status),
        heatmap_metric=cfg.heatmap_metric,
        bootstrap_samples=cfg.bootstrap_samples,
    )
