"""The cover downloader against a local HTTP server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from mmpc.completion.catalog.fetch import fetch_images

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 5000 + b"\xff\xd9"


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[Counter[str]] = Counter()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        if self.path == "/flaky.jpg" and self.hits[self.path] <= 2:
            self.send_error(503)
            return
        if self.path == "/short.jpg":  # promises more bytes than it sends, every time
            self.send_response(200)
            self.send_header("Content-Length", str(len(JPEG) + 10))
            self.end_headers()
            self.wfile.write(JPEG)
            return
        if self.path in {"/ok.jpg", "/flaky.jpg", "/hires.jpg"}:
            self.send_response(200)
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)
            return
        self.send_error(404)


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _meta(path: Path, base: str) -> Path:
    def rec(asin, hi_res, large=None, variant="MAIN"):
        return {
            "parent_asin": asin,
            "title": "t",
            "images": [{"thumb": None, "large": large, "variant": variant, "hi_res": hi_res}],
        }

    rows = [
        rec("B0OK", f"{base}/ok.jpg"),
        rec("B0LARGE", None, f"{base}/hires.jpg"),
        rec("B0FLAKY", f"{base}/flaky.jpg"),
        rec("B0GONE", f"{base}/gone.jpg"),
        rec("B0SHORT", f"{base}/short.jpg"),
        rec("B0DONE", f"{base}/ok.jpg"),
        rec("B0NOMAIN", f"{base}/ok.jpg", variant="PT01"),
        rec("B0FILE", "file:///etc/passwd"),
        rec("../escape", f"{base}/ok.jpg"),
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    return path


def test_fetch_downloads_resumes_retries_and_counts(server: str, tmp_path: Path) -> None:
    out = tmp_path / "images"
    out.mkdir()
    (out / "B0DONE.jpg").write_bytes(b"already here")
    (out / "B0OK.jpg.part").write_bytes(b"half")  # left by a killed run
    sleeps: list[float] = []
    stats = fetch_images(
        [_meta(tmp_path / "meta.jsonl", server)],
        out,
        retries=3,
        backoff=0.5,
        timeout=5,
        sleep=sleeps.append,
    )
    assert stats == Counter(
        {
            "downloaded": 3,
            "skipped_existing": 1,
            "http_404": 1,
            "gave_up_after_retries": 1,
            "no_main_image": 1,
            "bad_url_scheme": 1,
            "unsafe_id": 1,
            "meta_malformed_json": 1,
        }
    )
    for name in ("B0OK", "B0LARGE", "B0FLAKY"):
        assert (out / f"{name}.jpg").read_bytes() == JPEG
    assert (out / "B0DONE.jpg").read_bytes() == b"already here"
    assert not (out / "B0GONE.jpg").exists() and not (out / "B0SHORT.jpg").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "B0DONE.jpg",
        "B0FLAKY.jpg",
        "B0LARGE.jpg",
        "B0OK.jpg",
    ]  # no .part left
    assert _Handler.hits["/flaky.jpg"] == 3 and _Handler.hits["/gone.jpg"] == 1
    assert _Handler.hits["/short.jpg"] == 4
    # flaky: 2 waits; short: 3 waits; exponential backoff
    assert sleeps == [0.5, 1.0, 0.5, 1.0, 2.0]
    assert not (tmp_path / "escape.jpg").exists()

    again = fetch_images([tmp_path / "meta.jsonl"], out, retries=0, sleep=sleeps.append)
    assert again["skipped_existing"] == 4 and again["downloaded"] == 0
