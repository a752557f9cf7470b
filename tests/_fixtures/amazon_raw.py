"""Amazon Reviews 2023-schema raw files with every bad-input case the loader must survive.

Shared by tests/completion/catalog (the loader tests) and tests/apps (the ``mmpc data amazon`` CLI
test).
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["CATEGORY", "write_amazon_raw"]

CATEGORY = "Video_Games"
CORE_USERS = [f"AE{u}XUSER" for u in range(6)]
GOOD = [f"B0GOOD{i}" for i in range(7)]
T0 = 1_600_000_000_000


def _meta(
    item_id: str | None, title: str | None, images: Any = "default", details: Any = None
) -> dict[str, Any]:
    url = f"https://m.media-amazon.com/images/I/{item_id}"
    if isinstance(images, str) and images == "default":
        images = [
            {
                "thumb": f"{url}_thumb.jpg",
                "large": f"{url}_large.jpg",
                "variant": "MAIN",
                "hi_res": f"{url}_hires.jpg",
            },
            {
                "thumb": f"{url}_pt_thumb.jpg",
                "large": f"{url}_pt_large.jpg",
                "variant": "PT01",
                "hi_res": None,
            },
        ]
    rec = {
        "main_category": "Video Games",
        "title": title,
        "average_rating": 4.4,
        "rating_number": 120,
        "features": ["Works with all consoles", "2-year warranty"],
        "description": ["A controller for long sessions."],
        "price": 24.99,
        "images": images,
        "videos": [],
        "store": "Hori",
        "categories": ["Video Games", "Accessories"],
        "details": details if details is not None else {"Release date": "May 1, 2020"},
        "bought_together": None,
    }
    if item_id is not None:
        rec["parent_asin"] = item_id
    return rec


def _review(user: str | None, item: str, ts: Any, rating: Any = 5.0) -> dict[str, Any]:
    rec = {
        "rating": rating,
        "title": "Great",
        "text": "Works well.",
        "images": [],
        "asin": item,
        "parent_asin": item,
        "timestamp": ts,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    if user is not None:
        rec["user_id"] = user
    return rec


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg(path: Path, colour: tuple[int, int, int], size: int = 48) -> None:
    Image.new("RGB", (size, size), colour).save(path, "JPEG", quality=90)


def write_amazon_raw(root: Path, *, gz: bool = False) -> dict[str, Any]:
    """Write ``{Cat}.jsonl``, ``meta_{Cat}.jsonl`` (or ``.gz``) and ``images/`` under ``root``.

    Seven good items (every form the loader must accept) reviewed by six users, plus one record
    per kind of bad input. Returns what a correct loader must produce.
    """
    from skimage import data as skdata

    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, item in enumerate([*GOOD, "B0WEAK", "B0FEW"]):
        _jpeg(images / f"{item}.jpg", (20 * i, 100, 200 - 20 * i))
    Image.new("RGBA", (40, 30), (10, 200, 30, 128)).save(images / "B0GOOD4.jpg", "PNG")
    Image.fromarray(skdata.astronaut()[::4, ::4]).save(images / "B0GOOD6.jpg", "JPEG")
    (images / "B0EMPTY.jpg").write_bytes(b"")
    full = (images / "B0GOOD0.jpg").read_bytes()
    (images / "B0TRUNC.jpg").write_bytes(full[: len(full) // 2])
    (images / "B0CORRUPT.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (images / "B0BOMB.jpg").write_bytes(png_claiming(100_000, 100_000))
    (root / "evil.jpg").write_bytes(full)  # what "../evil" would reach from images/

    meta = [
        _meta("B0GOOD0", "Wireless Controller for Switch"),
        _meta(
            "B0GOOD1",
            "Charging Dock Station",
            images=[
                {
                    "thumb": "t.jpg",
                    "large": "https://x/B0GOOD1_large.jpg",
                    "variant": "MAIN",
                    "hi_res": None,
                }
            ],
        ),
        _meta(
            "B0GOOD2",
            "Racing Wheel Pro Edition",
            images={
                "thumb": ["t1", "t2"],
                "large": ["l1", "https://x/B0GOOD2_large.jpg"],
                "variant": ["PT01", "MAIN"],
                "hi_res": [None, "https://x/B0GOOD2_hi.jpg"],
            },
            details=json.dumps({"Platform": "PC"}),
        ),
        _meta("B0GOOD3", "Pok&eacute;mon &amp; Friends  Deluxe"),
        _meta("B0GOOD4", "Translucent Green Skin Case"),
        _meta("B0GOOD5", "Headset Stand NONUTF8"),
        _meta("B0GOOD6", "Astronaut Edition Console"),
        _meta("B0WEAK", "Weakly Reviewed Cable"),
        _meta("B0SHORT", "abc"),
        _meta("B0NULLTITLE", None),
        _meta("B0NOIMAGES", "Mystery Product", images=[]),
        _meta(
            "B0NOMAIN",
            "Side View Only",
            images=[{"thumb": "t", "large": "l", "variant": "PT01", "hi_res": "h"}],
        ),
        _meta(
            "B0NOURL",
            "Main Without Links",
            images=[{"thumb": "t", "large": None, "variant": "MAIN", "hi_res": None}],
        ),
        _meta("B0MISSING", "Cover File Absent"),
        _meta("B0EMPTY", "Zero Byte Cover"),
        _meta("B0TRUNC", "Truncated Cover"),
        _meta("B0CORRUPT", "Corrupt Cover Bytes"),
        _meta("B0BOMB", "Decompression Bomb Cover"),
        _meta("../evil", "Escaping Identifier"),
        _meta("a/b", "Slash Identifier"),
        _meta(None, "No Parent Asin Here"),
        _meta("B0GOOD0", "Duplicate Line Of Good Zero"),
        _meta("B0FEW", "Few Reviews Item"),
        _meta("B0NOREVIEWS", "Never Reviewed Item"),
    ]
    meta_lines = [json.dumps(m).encode() for m in meta]
    meta_lines = [ln.replace(b"NONUTF8", b"\xff\xfe caf\xe9") for ln in meta_lines]
    meta_lines.insert(3, b'{"parent_asin": "B0BROKEN", "title": ')
    meta_lines.insert(5, b"[1, 2, 3]")

    reviews: list[dict[str, Any]] = []
    ts = T0
    for item in GOOD:
        for user in CORE_USERS:
            ts += 1000
            reviews.append(_review(user, item, ts))
    bad_items = [
        "B0SHORT",
        "B0NULLTITLE",
        "B0NOIMAGES",
        "B0NOMAIN",
        "B0NOURL",
        "B0MISSING",
        "B0EMPTY",
        "B0TRUNC",
        "B0CORRUPT",
        "B0BOMB",
        "../evil",
        "a/b",
    ]
    for item in bad_items:
        reviews += [_review(u, item, T0 + 5) for u in CORE_USERS]
    reviews += [_review(u, "B0FEW", T0 + 6) for u in CORE_USERS[:3]]
    reviews += [_review(u, "B0NOMETA", T0 + 7) for u in CORE_USERS[:5]]
    reviews += [
        _review("AE6WEAKUSER", i, T0 + 8) for i in ["B0GOOD0", "B0GOOD1", "B0GOOD2", "B0WEAK"]
    ]
    reviews += [_review(u, "B0WEAK", T0 + 9) for u in CORE_USERS[:4]]
    reviews.append(_review(CORE_USERS[0], "B0GOOD0", ts + 10_000))  # later repeat: dropped
    reviews.append(_review(CORE_USERS[1], "B0GOOD1", T0 - 50_000, rating=1.0))  # earlier: kept
    reviews += [
        _review(None, "B0GOOD0", T0),
        _review(CORE_USERS[0], "B0GOOD0", None),
        _review(CORE_USERS[0], "B0GOOD0", "abc"),
        _review(CORE_USERS[0], "B0GOOD0", T0, rating="x"),
    ]
    review_lines = [json.dumps(r).encode() for r in reviews]
    review_lines[0] = review_lines[0].replace(b"Works well.", b"Works \xff well.")
    review_lines.insert(10, b"{not json")
    review_lines.insert(20, b"")

    suffix = ".jsonl.gz" if gz else ".jsonl"
    for name, lines in (
        (f"{CATEGORY}{suffix}", review_lines),
        (f"meta_{CATEGORY}{suffix}", meta_lines),
    ):
        payload = b"\n".join(lines) + b"\n"
        (root / name).write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return {
        "category": CATEGORY,
        "core_users": CORE_USERS,
        "t0": T0,
        "items": sorted(GOOD),
        "users": sorted(CORE_USERS),
        "interactions": 42,
        "dropped": {
            "non_utf8_line": 2,
            "meta_malformed_json": 2,
            "review_malformed_json": 1,
            "review_missing_field": 2,
            "review_bad_field": 2,
            "short_title": 2,
            "no_images": 1,
            "no_main_image": 1,
            "no_cover_url": 1,
            "image_missing": 1,
            "image_empty": 1,
            "image_corrupt": 2,
            "image_too_large": 1,
            "unsafe_id": 2,
            "meta_missing_parent_asin": 1,
            "meta_duplicate_item": 1,
            "item_fewer_than_k_reviews": 1,
            "meta_item_without_reviews": 1,
            "review_item_not_kept": 12 * 6 + 3 + 5,
            "repeat_interaction": 2,
            "kcore_interaction": 8,
            "kcore_item": 1,
        },
    }
