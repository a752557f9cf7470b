"""The ``catalog`` stage: the catalogue every other stage reads.

With ``catalog.path`` the stage opens the given folder and records where it is and its hashes
(``source.json``); its manifest's hash enters the stage config, so a changed catalogue reruns
the study. Without it the stage synthesizes the preset into its own folder (``catalogue/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmpc.apps.bench.config import CatalogConfig
from mmpc.apps.bench.stages import StageContext
from mmpc.metrics.files import atomic_write_json, file_sha256


def catalog_root(cfg: CatalogConfig, stage_dir: Path) -> Path:
    """The catalogue folder: the configured path, or the synthetic one inside the stage."""
    return Path(cfg.path) if cfg.path else stage_dir / "catalogue"


def catalog_settings(cfg: CatalogConfig) -> dict[str, Any]:
    """The stage's config: ``cfg``, plus the sha256 of a given catalogue's manifest."""
    config = asdict(cfg)
    if cfg.path:
        manifest = Path(cfg.path) / "manifest.json"
        config["manifest_sha256"] = file_sha256(manifest) if manifest.exists() else None
    return config


def catalog_stage(cfg: CatalogConfig) -> Callable[[StageContext], dict[str, int]]:
    """The stage function: open or synthesize the catalogue; counts items, interactions,
    categories and the CQBench sample."""

    def run(ctx: StageContext) -> dict[str, int]:
        from mmpc.completion.catalog import Catalog, synthesize

        if cfg.path:
            cat = Catalog.open(cfg.path)
            atomic_write_json(
                ctx.out / "source.json",
                {
                    "path": str(Path(cfg.path).resolve()),
                    "hashes": cat.manifest.get("hashes"),
                },
                sort_keys=True,
                default=str,
            )
        else:
            cat = synthesize(cfg.preset, cfg.seed, ctx.out / "catalogue")
        ctx.notes["synthetic"] = cat.is_synthetic
        return {
            "items": len(cat.items),
            "interactions": len(cat.interactions),
            "categories": len(cat.categories),
            "cqbench": len(cat.sample("cqbench")),
        }

    return run
