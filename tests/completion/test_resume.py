"""A real run killed with SIGKILL half way, then restarted, ends with every item exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmpc.completion.catalog import Catalog
from mmpc.completion.writer import read_jsonl, read_records

SCRIPT = Path(__file__).with_name("predict_script.py")  # the package API, no CLI


def _command(catalog: Catalog, model: Path, run: Path) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        f"--catalog={catalog.root}",
        f"--model={model}",
        f"--run-dir={run}",
        "--limit=12",
        "--batch-size=1",
        '--generation={"max_new_tokens": 16, "min_new_tokens": 16}',
    ]


@pytest.mark.slow
def test_sigkill_then_restart_gives_exactly_once(
    tiny_catalog: Catalog, tiny_qwen: Path, tmp_path: Path
) -> None:
    out = tmp_path / "completion" / "qwen2.5-vl-7b" / "i2t"
    part = out / "parts" / "rank0.jsonl"
    sample = tiny_catalog.sample("cqbench")[:12]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _command(tiny_catalog, tiny_qwen, tmp_path),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if part.is_file() and len(read_jsonl(part)[0]) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (
            f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    done_before = read_records(out)
    assert 3 <= len(done_before) < len(sample), "the kill did not land half way"
    assert not (out / "records.jsonl").exists()  # nothing was merged by the killed run

    rerun = subprocess.run(
        _command(tiny_catalog, tiny_qwen, tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    lines = (out / "records.jsonl").read_text().splitlines()
    ids = [json.loads(line)["item_id"] for line in lines]  # every line is valid JSON
    assert ids == sample  # every item exactly once, in sample order
    assert not (out / "parts").exists()
    for item, record in done_before.items():  # work done before the kill was kept, not redone
        assert json.loads(lines[ids.index(item)]) == record
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == len(done_before)
    assert summary["done_this_run"] == len(sample) - len(done_before)
    assert summary["total"] == len(sample) and summary["missing"] == 0
