"""Download the cover images named in Amazon Reviews 2023 metadata (explicit command only).

For every metadata record with a safe ``parent_asin`` and a ``MAIN`` image URL (``hi_res``, else
``large``), the image is saved as ``out/{parent_asin}.jpg``. Resumable: a file that already exists
is complete (downloads go to ``.part`` and are renamed only when finished) and is skipped.
Transient failures (network errors, HTTP 429 and 5xx) are retried with exponential backoff;
other HTTP errors are not. Nothing in the tests or in any default run calls this.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from tqdm.auto import tqdm

from mmpc.completion.catalog.rawio import iter_records, main_image_url, safe_image_path

Opener = Callable[[str, float], IO[bytes]]
USER_AGENT = "mmpcbench-fetch/1 (+https://github.com/GAIR-Lab/MMPCBench)"


def _default_opener(url: str, timeout: float) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=timeout)  # scheme checked by the caller


def _transient(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code == 429 or err.code >= 500
    return isinstance(err, urllib.error.URLError | TimeoutError | ConnectionError | OSError)


def download(
    url: str,
    dest: Path,
    *,
    opener: Opener = _default_opener,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> str | None:
    """Download ``url`` to ``dest`` atomically; ``None`` on success, else the failure reason.

    Attempt ``a`` (0-based) that fails transiently waits ``backoff * 2**a`` seconds before the
    next; at most ``retries + 1`` attempts. A short body (less than Content-Length) is transient.
    """
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            with opener(url, timeout) as response, open(part, "wb") as fh:
                expected = getattr(response, "headers", {}).get("Content-Length")
                written = 0
                while block := response.read(1 << 16):
                    fh.write(block)
                    written += len(block)
            if expected is not None and written != int(expected):
                raise ConnectionError(f"{url}: got {written} of {expected} bytes")
            if written == 0:
                part.unlink(missing_ok=True)
                return "empty_body"
            os.replace(part, dest)
            return None
        except Exception as err:
            part.unlink(missing_ok=True)
            if not _transient(err):
                return f"http_{err.code}" if isinstance(err, urllib.error.HTTPError) else "error"
            if attempt < retries:
                sleep(backoff * 2**attempt)
    return "gave_up_after_retries"


def fetch_images(
    meta_files: Iterable[str | Path],
    out: str | Path,
    *,
    opener: Opener = _default_opener,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> Counter[str]:
    """Download the MAIN cover of every item in ``meta_files`` into ``out``; returns counts.

    Counts: ``downloaded``, ``skipped_existing``, and one key per reason an item was not fetched
    (``unsafe_id``, ``no_main_image``, ``no_cover_url``, ``no_images``, ``bad_url_scheme``,
    ``http_404`` ..., ``gave_up_after_retries``, and the metadata reading reasons).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats: Counter[str] = Counter()
    seen: set[str] = set()
    for meta in meta_files:
        meta = Path(meta)
        for rec in tqdm(
            iter_records(meta, stats, "meta"),
            desc=f"fetching covers of {meta.name}",
            unit=" items",
            mininterval=2.0,
        ):
            item_id = rec.get("parent_asin")
            dest = safe_image_path(out, item_id)
            if dest is None:
                stats["unsafe_id"] += 1
                continue
            if item_id in seen:
                continue
            seen.add(item_id)
            url, reason = main_image_url(rec.get("images"))
            if url is None:
                stats[reason or "no_images"] += 1
                continue
            if urlparse(url).scheme not in {"http", "https"}:
                stats["bad_url_scheme"] += 1
                continue
            if dest.is_file() and dest.stat().st_size > 0:
                stats["skipped_existing"] += 1
                continue
            failure = download(
                url,
                dest,
                opener=opener,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
                sleep=sleep,
            )
            stats[failure or "downloaded"] += 1
    return stats
