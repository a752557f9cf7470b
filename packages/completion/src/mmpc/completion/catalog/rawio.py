"""Reading Amazon Reviews 2023 raw files defensively: lines, JSON, fields, ids, covers.

Every function that can meet bad input returns ``None`` (or a reason string) and counts the reason
in a ``collections.Counter``; nothing here raises on a bad record. Decisions:

* Bytes that are not UTF-8 are decoded with ``errors="replace"`` (U+FFFD) and the line is kept;
  the reason ``non_utf8_line`` is counted. A replaced character in an id makes that id unsafe,
  so such items are dropped by the id check.
* Ids used as file names must match ``SAFE_ID`` (letters, digits, ``._-``; no leading dot) and the
  joined path must stay inside its folder; anything else is counted as ``unsafe_id``.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_MAX_PIXELS = 40_000_000
_SPACES = re.compile(r"\s+")


def find_raw_file(raw_dir: Path, stem: str) -> Path:
    """``raw_dir/stem.jsonl`` or ``raw_dir/stem.jsonl.gz``; ``FileNotFoundError`` naming both."""
    for suffix in (".jsonl", ".jsonl.gz"):
        path = Path(raw_dir) / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{raw_dir}: neither {stem}.jsonl nor {stem}.jsonl.gz exists")


def iter_records(path: Path, dropped: Counter[str], prefix: str) -> Iterator[dict[str, Any]]:
    """Stream the JSON objects of a ``.jsonl`` / ``.jsonl.gz`` file, one line at a time.

    Blank lines are skipped silently; lines that are not a JSON object are counted as
    ``{prefix}_malformed_json``; non-UTF-8 lines are decoded with replacement and counted as
    ``non_utf8_line``. A gzip stream cut short ends the iteration and counts ``{prefix}_truncated``.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        try:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    dropped["non_utf8_line"] += 1
                    line = raw.decode("utf-8", errors="replace")
                try:
                    obj = json.loads(line)
                except ValueError:
                    dropped[f"{prefix}_malformed_json"] += 1
                    continue
                if not isinstance(obj, dict):
                    dropped[f"{prefix}_malformed_json"] += 1
                    continue
                yield obj
        except (EOFError, gzip.BadGzipFile, OSError):
            dropped[f"{prefix}_truncated"] += 1


def clean_text(value: Any) -> str:
    """A string field, a list of strings joined by spaces, or ``""``; HTML entities unescaped,
    whitespace collapsed."""
    if isinstance(value, list):
        value = " ".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str):
        return ""
    return _SPACES.sub(" ", html.unescape(value)).strip()


def parse_details(value: Any) -> dict[str, Any]:
    """``details`` as a dict: the JSON-lines form (a dict) or the Hugging Face form (a JSON
    string); anything else (null, malformed) gives ``{}``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def main_image_url(images: Any) -> tuple[str | None, str | None]:
    """(cover URL, None) or (None, drop reason) from a metadata ``images`` field.

    Accepts the JSON-lines form (a list of ``{thumb, large, variant, hi_res}`` dicts) and the
    Hugging Face form (a dict of equal-length lists). The cover is the first ``MAIN`` variant;
    its URL is ``hi_res``, falling back to ``large`` when ``hi_res`` is null or empty.
    """
    if isinstance(images, dict):
        variants = images.get("variant") or []
        n = len(variants) if isinstance(variants, list) else 0
        rows = [
            {
                key: (col[i] if isinstance(col, list) and i < len(col) else None)
                for key, col in images.items()
            }
            for i in range(n)
        ]
    elif isinstance(images, list):
        rows = [row for row in images if isinstance(row, dict)]
    else:
        return None, "no_images"
    if not rows:
        return None, "no_images"
    for row in rows:
        if row.get("variant") == "MAIN":
            for key in ("hi_res", "large"):
                url = row.get(key)
                if isinstance(url, str) and url.strip():
                    return url.strip(), None
            return None, "no_cover_url"
    return None, "no_main_image"


def safe_image_path(folder: Path, item_id: Any, suffix: str = ".jpg") -> Path | None:
    """``folder/{item_id}{suffix}`` when ``item_id`` is a safe file name inside ``folder``."""
    if not isinstance(item_id, str) or not SAFE_ID.match(item_id) or ".." in item_id:
        return None
    base = folder.resolve()
    path = (base / f"{item_id}{suffix}").resolve()
    return path if path.parent == base else None


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[str | None, str | None]:
    """(PIL format, None) when ``path`` is a complete, decodable image of at most ``max_pixels``
    pixels; otherwise (None, reason): image_missing, image_empty, image_too_large, image_corrupt.

    The size is checked from the header before any pixel is decoded (decompression-bomb guard);
    decoding then runs fully, so truncated files fail here and not later.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return None, "image_missing"
    if size == 0:
        return None, "image_empty"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    return None, "image_too_large"
                fmt = img.format
                img.load()
    except Image.DecompressionBombError:
        return None, "image_too_large"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return None, "image_corrupt"
    return fmt, None
