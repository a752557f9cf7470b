"""The embedded synthetic catalogue: items, covers and simulated users, generated offline.

Generation per category (its own seeded stream, so categories do not depend on each other):

1. Items draw attributes (product type, colour, secondary colour, pattern, material, brand, size,
   background) and a latent popularity ``p_i ~ LogNormal(0, 1)``; the cover is rendered from the
   attributes (``render``), the title and description from templates (``synth_text``).
2. Users draw preferences (two colours, a product type, a brand, a pattern). The affinity of user
   ``u`` for item ``i`` is ``a_ui = 1.0[colour_i = c1_u] + 0.6[colour_i = c2_u]
   + 0.8[type_i = t_u] + 0.5[brand_i = b_u] + 0.4[pattern_i = q_u]``.
3. User ``u`` interacts with ``d_u >= 5`` items (activity-weighted, summing to the preset's count):
   the top ``d_u`` of ``pop_weight * log p_i + attr_weight * a_ui + Gumbel noise`` (a Plackett-Luce
   draw without replacement). Items left with fewer than 5 users take edges from the most popular
   items by swapping, inside one user, a surplus item for the deficient one (the user with the
   highest ``a_uj - a_uk``), so user and item counts stay exact and the graph is 5-core.
4. Timestamps: a per-user start in 2019-2023 plus exponential gaps (mean 20 days), in ms;
   ratings ``clip(round(3.4 + 0.6 a_ui + N(0, 0.7)), 1, 5)``.
5. 5-core (a no-op check here), MMRec random split, CQBench/GRPO samples, files (``format``).

Everything is a function of (preset, seed): the same seed gives byte-identical files.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from mmpc.completion.catalog.format import (
    IMAGES_DIR,
    MANIFEST_FILE,
    SYNTHETIC_SOURCE,
    Catalog,
    CatalogError,
    write_catalog,
    write_parquet,
)
from mmpc.completion.catalog.kcore import kcore
from mmpc.completion.catalog.render import render_cover
from mmpc.completion.catalog.splits import draw_samples, split_interactions
from mmpc.completion.catalog.synth_text import make_description, make_title
from mmpc.completion.catalog.vocab import (
    BACKGROUNDS,
    BRANDS,
    CATEGORIES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    SIZES,
    TYPES,
)
from mmpc.metrics.files import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)
ABBREV = {
    "All_Beauty": "AB",
    "Arts_Crafts_and_Sewing": "AC",
    "Electronics": "EL",
    "Home_and_Kitchen": "HK",
    "Industrial_and_Scientific": "IS",
    "Musical_Instruments": "MI",
    "Office_Products": "OP",
    "Toys_and_Games": "TG",
    "Video_Games": "VG",
}
ATTRIBUTES = [
    "product_type",
    "color",
    "secondary_color",
    "pattern",
    "material",
    "brand",
    "size",
    "background",
]
MARKER_FILE = ".synth-config.json"
_T0_MS, _T1_MS = 1546300800000, 1685577600000  # 2019-01-01, 2023-06-01
_DAY_MS = 86_400_000


@dataclass
class SynthConfig:
    """Sizes of a synthetic catalogue (per category: users, items, interactions after 5-core)."""

    counts: dict[str, tuple[int, int, int]]
    image_size: int = 256
    cqbench_n: int = 1000
    grpo_n: int = 500
    k: int = 5
    pop_weight: float = 0.7
    attr_weight: float = 1.6
    split: str = "random"
    preset: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str, **overrides: object) -> SynthConfig:
        """The preset ``name`` from ``presets.yaml`` ("tiny", "demo", "paper"), with overrides."""
        presets = yaml.safe_load(resources.files(__package__).joinpath("presets.yaml").read_text())
        if name not in presets:
            raise CatalogError(f"presets.yaml: unknown preset {name!r} (have {sorted(presets)})")
        spec = dict(presets[name])
        cats = CATEGORIES if spec.pop("categories") == "all" else None
        if "counts" in spec:
            counts = {c: tuple(v) for c, v in spec.pop("counts").items()}
        else:
            triple = (spec.pop("users"), spec.pop("items"), spec.pop("interactions"))
            counts = {c: triple for c in (cats or presets[name]["categories"])}
        spec.update({k: v for k, v in overrides.items() if v is not None})
        return cls(counts=counts, preset=name, **spec)


def _item_seed(seed: int, item_id: str) -> int:
    return zlib.crc32(f"{seed}:{item_id}".encode())


def _make_items(cat: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    types = sorted(TYPES[cat])
    colours = sorted(COLOURS)
    primary = rng.integers(len(colours), size=n)
    secondary = (primary + rng.integers(1, len(colours), size=n)) % len(colours)
    frame = pd.DataFrame(
        {
            "item_id": [f"SYN-{ABBREV[cat]}-{j:05d}" for j in range(n)],
            "category": cat,
            "product_type": np.array(types)[rng.integers(len(types), size=n)],
            "color": np.array(colours)[primary],
            "secondary_color": np.array(colours)[secondary],
            "pattern": np.array(PATTERNS)[
                rng.choice(len(PATTERNS), size=n, p=[0.4, 0.15, 0.15, 0.15, 0.15])
            ],
            "material": np.array(MATERIALS)[rng.integers(len(MATERIALS), size=n)],
            "brand": np.array(BRANDS[cat])[rng.integers(len(BRANDS[cat]), size=n)],
            "size": np.array(SIZES)[rng.integers(len(SIZES), size=n)],
            "background": np.array(BACKGROUNDS)[rng.integers(len(BACKGROUNDS), size=n)],
        }
    )
    frame["popularity"] = rng.lognormal(0.0, 1.0, size=n).astype(np.float32)
    records = frame[ATTRIBUTES].to_dict("records")
    frame["title"] = [make_title(a, cat, rng) for a in records]
    frame["description"] = [make_description(a, cat, rng) for a in records]
    frame["image"] = [f"{IMAGES_DIR}/{i}.png" for i in frame["item_id"]]
    return frame


def _one_hot(values: pd.Series, vocab: list[str]) -> np.ndarray:
    codes = pd.Categorical(values, categories=vocab).codes
    return np.eye(len(vocab), dtype=np.float32)[codes]  # (N, V)


def _affinity_parts(
    cat: str, items: pd.DataFrame, n_users: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(user weights (U, F), item one-hots (I, F), user preference table); a_ui = W_u . X_i."""
    vocabs = [sorted(COLOURS), sorted(TYPES[cat]), BRANDS[cat], PATTERNS]
    cols = ["color", "product_type", "brand", "pattern"]
    X = np.concatenate([_one_hot(items[c], v) for c, v in zip(cols, vocabs, strict=True)], 1)
    c1 = rng.integers(12, size=n_users)
    c2 = (c1 + rng.integers(1, 12, size=n_users)) % 12
    t = rng.integers(len(vocabs[1]), size=n_users)
    b = rng.integers(len(vocabs[2]), size=n_users)
    q = rng.integers(len(vocabs[3]), size=n_users)
    W = np.zeros((n_users, X.shape[1]), np.float32)
    rows = np.arange(n_users)
    W[rows, c1] = 1.0
    W[rows, c2] = 0.6
    W[rows, 12 + t] = 0.8
    W[rows, 12 + len(vocabs[1]) + b] = 0.5
    W[rows, 12 + len(vocabs[1]) + len(vocabs[2]) + q] = 0.4
    prefs = pd.DataFrame(
        {
            "color_1": np.array(vocabs[0])[c1],
            "color_2": np.array(vocabs[0])[c2],
            "product_type": np.array(vocabs[1])[t],
            "brand": np.array(vocabs[2])[b],
            "pattern": np.array(vocabs[3])[q],
        }
    )
    return W, X, prefs


def _simulate(
    cat: str,
    items: pd.DataFrame,
    n_users: int,
    n_inter: int,
    cfg: SynthConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_items, k = len(items), cfg.k
    W, X, prefs = _affinity_parts(cat, items, n_users, rng)
    activity = rng.lognormal(0.0, 0.8, size=n_users)
    deg = k + rng.multinomial(n_inter - k * n_users, activity / activity.sum())
    deg = np.minimum(deg, n_items)
    while (left := n_inter - int(deg.sum())) > 0:  # hand what the cap removed to other users
        open_users = np.flatnonzero(deg < n_items)
        if not len(open_users):
            raise CatalogError(f"synthetic {cat}: {n_inter} interactions exceed users x items")
        np.add.at(deg, rng.choice(open_users, size=min(left, len(open_users)), replace=False), 1)
    log_pop = np.log(items["popularity"].to_numpy(np.float64))
    adj = np.zeros((n_users, n_items), dtype=bool)  # (U, I)
    for start in range(0, n_users, 2048):
        sl = slice(start, min(start + 2048, n_users))
        score = cfg.pop_weight * log_pop[None] + cfg.attr_weight * (W[sl] @ X.T)  # (b, I)
        score = score + rng.gumbel(size=score.shape)
        order = np.argsort(-score, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(n_items)[None].repeat(len(order), 0), 1)
        adj[sl] = rank < deg[sl, None]
    count = adj.sum(0)  # (I,)
    for j in np.flatnonzero(count < k):
        aff_j = W @ X[j]  # (U,)
        while count[j] < k:
            for s in np.argsort(-count, kind="stable"):
                if count[s] <= k:
                    raise CatalogError(f"synthetic {cat}: cannot make item {j} 5-core")
                cand = adj[:, s] & ~adj[:, j]
                if cand.any():
                    gain = np.where(cand, aff_j - W @ X[s], -np.inf)
                    u = int(np.argmax(gain))
                    adj[u, s], adj[u, j] = False, True
                    count[s] -= 1
                    count[j] += 1
                    break
    users, its = np.nonzero(adj)
    aff = np.einsum("nf,nf->n", W[users], X[its])
    # timestamps: per user, a random order of its items with exponential gaps
    key = rng.random(len(users))
    order = np.lexsort((key, users))
    users, its, aff = users[order], its[order], aff[order]
    starts = rng.integers(_T0_MS, _T1_MS, size=n_users)
    gaps = rng.exponential(20 * _DAY_MS, size=len(users)).astype(np.int64)
    csum = np.cumsum(gaps)
    first = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))[:-1]])
    offset = csum - (csum[first] - gaps[first])[users]
    rating = np.clip(np.rint(3.4 + 0.6 * aff + rng.normal(0, 0.7, size=len(users))), 1, 5)
    user_ids = np.array([f"syn-{ABBREV[cat]}-u{u:05d}" for u in range(n_users)], dtype=object)
    inter = pd.DataFrame(
        {
            "user_id": user_ids[users],
            "item_id": items["item_id"].to_numpy()[its],
            "timestamp": (starts[users] + offset).astype(np.int64),
            "rating": rating.astype(np.float32),
        }
    )
    prefs.insert(0, "user_id", user_ids)
    return inter, prefs


def _render_batch(jobs: list[tuple[str, dict[str, str], int, int]]) -> None:
    for path, attrs, size, seed in jobs:
        buf = io.BytesIO()
        render_cover(attrs, size, seed).save(buf, "PNG", compress_level=6)
        # Thousands of small covers: no fsync per file (a lost cover is re-rendered on rerun).
        atomic_write_bytes(Path(path), buf.getvalue(), fsync=False)


def render_covers(out: Path, items: pd.DataFrame, size: int, seed: int, workers: int = 1) -> None:
    """Render every missing cover of ``items`` to ``out / items.image`` (atomic, skips existing).

    Existing files are reused: they were written atomically for the same (preset, seed), which
    the marker file in ``out`` guarantees, so an interrupted run resumes where it stopped.
    """
    jobs = [
        (str(out / rel), dict(zip(ATTRIBUTES, vals, strict=True)), size, _item_seed(seed, i))
        for i, rel, *vals in items[["item_id", "image", *ATTRIBUTES]].itertuples(index=False)
        if not (out / rel).is_file()
    ]
    batches = [jobs[i : i + 256] for i in range(0, len(jobs), 256)]
    desc = f"rendering {len(jobs)} SYNTHETIC covers"
    if workers > 1 and len(jobs) > 2000:
        # spawn, not fork: the caller may hold threads (torch, BLAS) that fork would copy
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(tqdm(pool.map(_render_batch, batches), total=len(batches), desc=desc))
    else:
        for batch in tqdm(batches, desc=desc, disable=len(jobs) < 2000):
            _render_batch(batch)


def synthesize(
    preset: str | SynthConfig = "demo",
    seed: int = 0,
    out: str | Path = "catalog",
    *,
    workers: int = 1,
) -> Catalog:
    """Generate (or reopen, when already complete) the synthetic catalogue in ``out``.

    Args:
        preset: "tiny", "demo", "paper" or a ``SynthConfig``.
        seed: every random draw derives from it; same seed, same bytes.
        out: the catalogue folder (created; must be empty or hold the same preset and seed).
        workers: processes for rendering covers (used for more than 2,000 covers).
    """
    cfg = preset if isinstance(preset, SynthConfig) else SynthConfig.from_preset(preset)
    out = Path(out)
    marker = {"seed": seed, "config": asdict(cfg)}
    marker_path = out / MARKER_FILE
    if out.exists() and any(out.iterdir()):
        if not marker_path.is_file() or json.loads(marker_path.read_text()) != json.loads(
            json.dumps(marker)
        ):
            raise CatalogError(f"{out}: folder is not empty and holds another catalogue")
        if (out / MANIFEST_FILE).is_file():
            log.info("SYNTHETIC catalogue already complete in %s", out)
            return Catalog.open(out)
    atomic_write_json(marker_path, marker, sort_keys=True)
    log.info("generating SYNTHETIC catalogue (preset %s, seed %d) in %s", cfg.preset, seed, out)
    items, inters, prefs, notes = [], [], [], {}
    per_category = tqdm(
        sorted(cfg.counts.items()),
        desc="simulating SYNTHETIC categories",
        disable=len(cfg.counts) < 5,
    )
    for ci, (cat, (n_users, n_items, n_inter)) in enumerate(per_category):
        rng = np.random.default_rng([seed, ci])
        needed = cfg.k * max(n_users, n_items)
        if n_inter < needed:
            notes[cat] = f"interactions raised from {n_inter} to {needed} (5-core minimum)"
            n_inter = needed
        cat_items = _make_items(cat, n_items, rng)
        inter, pref = _simulate(cat, cat_items, n_users, n_inter, cfg, rng)
        items.append(cat_items)
        inters.append(inter)
        prefs.append(pref)
    items_df, inter_df = pd.concat(items, ignore_index=True), pd.concat(inters, ignore_index=True)
    cored = kcore(inter_df, cfg.k)
    dropped = {"kcore": len(inter_df) - len(cored)}
    cored = cored.assign(split=split_interactions(cored, cfg.split, seed=seed))
    samples = draw_samples(items_df, cqbench_n=cfg.cqbench_n, grpo_n=cfg.grpo_n, seed=seed)
    render_covers(out, items_df, cfg.image_size, seed, workers)
    pref_df = pd.concat(prefs, ignore_index=True)
    write_parquet(out / "user_preferences.parquet", pref_df)
    return write_catalog(
        out,
        items_df,
        cored,
        samples,
        source=SYNTHETIC_SOURCE,
        seed=seed,
        preset=cfg.preset,
        dropped=dropped,
        extra={
            "notes": notes,
            "image_size": cfg.image_size,
            "attributes": ATTRIBUTES,
            "user_preferences": "user_preferences.parquet",
        },
    )
