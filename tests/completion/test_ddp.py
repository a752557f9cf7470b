"""Lightning DDP with 2 CPU processes (gloo): items sharded, merged output exactly once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmpc.completion.catalog import Catalog

SCRIPT = Path(__file__).with_name("predict_script.py")  # the package API, no CLI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_shards_and_merges_exactly_once(
    tiny_catalog: Catalog, tiny_qwen: Path, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        str(SCRIPT),
        f"--catalog={tiny_catalog.root}",
        f"--model={tiny_qwen}",
        f"--run-dir={tmp_path}",
        "--limit=7",
        "--batch-size=2",
        "--devices=2",
    ]
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "completion" / "qwen2.5-vl-7b" / "i2t"
    ids = [json.loads(line)["item_id"] for line in (out / "records.jsonl").read_text().splitlines()]
    assert ids == tiny_catalog.sample("cqbench")[:7]
    summary = json.loads((out / "summary.json").read_text())
    parts = summary["merged_parts"]
    assert set(parts) == {"rank0", "rank1"}
    assert parts["rank0"] + parts["rank1"] == 7 and min(parts.values()) >= 3  # sharded, no repeats
    assert not (out / "parts").exists()
