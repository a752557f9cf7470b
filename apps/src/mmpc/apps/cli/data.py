"""``mmpc data``: build, inspect and export product catalogues.

Sub-commands::

    mmpc data synth --preset demo --out DIR [--seed 0] [--workers 2]
    mmpc data amazon --category Video_Games --raw-dir DIR --images-dir DIR --out DIR
    mmpc data fetch-images --raw-dir DIR --category Video_Games --out DIR
    mmpc data export-mmrec --catalog DIR --out DIR [--category Video_Games]
    mmpc data info DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmpc.apps.cli.errors import (
    Parser,
    check_catalog_dir,
    check_input_path,
    check_output_dir,
    run_guarded,
)
from mmpc.completion.catalog.rawio import DEFAULT_MAX_PIXELS
from mmpc.completion.catalog.vocab import CATEGORIES
from mmpc.metrics.errors import InputError

if TYPE_CHECKING:
    from mmpc.completion.catalog import Catalog

#: ``mmpc.completion.catalog.splits.SPLIT_METHODS``, spelt out so ``--help`` needs no pandas.
SPLIT_CHOICES = ("random", "chrono", "absolute")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mmpc data", description="build, inspect and export product catalogues")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the embedded SYNTHETIC catalogue")
    p.add_argument("--preset", default="demo", choices=["tiny", "demo", "paper"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=1, help="processes rendering covers")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--cqbench-n", type=int, default=None, help="CQBench items per category")
    p.add_argument("--grpo-n", type=int, default=None, help="GRPO items per category")

    p = sub.add_parser("amazon", help="build a catalogue from local Amazon Reviews 2023 files")
    p.add_argument(
        "--category",
        action="append",
        required=True,
        choices=CATEGORIES,
        help="repeat for several categories",
    )
    p.add_argument("--raw-dir", type=Path, required=True)
    p.add_argument("--images-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=5, help="k of the iterative k-core")
    p.add_argument("--split", default="random", choices=SPLIT_CHOICES)
    p.add_argument("--cqbench-n", type=int, default=1000)
    p.add_argument("--grpo-n", type=int, default=500)
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)

    p = sub.add_parser("fetch-images", help="download MAIN covers named in the metadata (network)")
    p.add_argument("--raw-dir", "--catalog-raw", dest="raw_dir", type=Path, required=True)
    p.add_argument("--category", action="append", required=True, choices=CATEGORIES)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=30.0)

    p = sub.add_parser("export-mmrec", help="write MMRec's .inter and id-mapping files")
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--category", default=None)
    p.add_argument("--name", default=None)

    p = sub.add_parser("info", help="print a catalogue's counts")
    p.add_argument("root", type=Path)
    return parser


def _info(cat: Catalog) -> str:
    man = cat.manifest
    label = (
        "SYNTHETIC catalogue (generated, not real products)"
        if cat.is_synthetic
        else (f"catalogue from {man['source']}")
    )
    lines = [
        f"{cat.root}: {label}",
        f"  seed {man.get('seed')}  preset {man.get('preset')}",
        f"  {'category':<28}{'items':>8}{'users':>8}{'inter.':>9}{'cqbench':>9}{'grpo':>6}",
    ]
    for name, row in cat.summary().items():
        lines.append(
            f"  {name:<28}{row['items']:>8}{row['users']:>8}{row['interactions']:>9}"
            f"{row['cqbench']:>9}{row['grpo']:>6}"
        )
    counts = man["counts"]
    lines.append(
        f"  {'total':<28}{counts['items']:>8}{counts['users']:>8}"
        f"{counts['interactions']:>9}{counts['samples']['cqbench']:>9}"
        f"{counts['samples']['grpo']:>6}"
    )
    lines.append(f"  splits {json.dumps(counts['splits'], sort_keys=True)}")
    if man["dropped"]:
        lines.append("  dropped " + ", ".join(f"{k}={v}" for k, v in man["dropped"].items()))
    for cat_name, note in man.get("notes", {}).items():
        lines.append(f"  note {cat_name}: {note}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from mmpc.completion.catalog import Catalog, load_amazon, synthesize
    from mmpc.completion.catalog.fetch import fetch_images
    from mmpc.completion.catalog.mmrec import export_mmrec
    from mmpc.completion.catalog.rawio import find_raw_file
    from mmpc.completion.catalog.synthetic import SynthConfig

    if args.command == "info":
        print(_info(Catalog.open(check_catalog_dir(args.root))))
        return 0
    for key in ("raw_dir", "images_dir"):
        if getattr(args, key, None) is not None:
            check_input_path(getattr(args, key), f"--{key.replace('_', '-')} folder")
    if args.command == "export-mmrec":
        check_catalog_dir(args.catalog, "--catalog")
    check_output_dir(args.out, "--out folder")
    try:
        if args.command == "synth":
            cfg = SynthConfig.from_preset(
                args.preset,
                image_size=args.image_size,
                cqbench_n=args.cqbench_n,
                grpo_n=args.grpo_n,
            )
            print(_info(synthesize(cfg, args.seed, args.out, workers=args.workers)))
        elif args.command == "amazon":
            cat = load_amazon(
                args.category,
                args.raw_dir,
                args.images_dir,
                args.out,
                seed=args.seed,
                k=args.k,
                split=args.split,
                cqbench_n=args.cqbench_n,
                grpo_n=args.grpo_n,
                max_pixels=args.max_pixels,
            )
            print(_info(cat))
        elif args.command == "fetch-images":
            metas = [find_raw_file(args.raw_dir, f"meta_{c}") for c in args.category]
            stats = fetch_images(metas, args.out, retries=args.retries, timeout=args.timeout)
            print(json.dumps(dict(sorted(stats.items())), indent=2))
        else:
            counts = export_mmrec(args.catalog, args.out, category=args.category, name=args.name)
            synthetic = Catalog.open(args.catalog).is_synthetic
            print(f"{args.out}: {counts}" + (" (SYNTHETIC data)" if synthetic else ""))
    except FileNotFoundError as err:  # find_raw_file: a raw file the user's folder lacks
        raise InputError(str(err)) from None
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``mmpc data ...``; returns the exit code (2 with one line on stderr for bad input)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sub = next((a for a in args if not a.startswith("-")), None)
    known = {"synth", "amazon", "fetch-images", "export-mmrec", "info"}

    def body() -> int:
        parsed = _parser().parse_args(args)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return _run(parsed)

    return run_guarded(f"mmpc data {sub}" if sub in known else "mmpc data", body)
