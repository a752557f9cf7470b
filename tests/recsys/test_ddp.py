"""Recommenders under Lightning DDP with 2 CPU processes (gloo).

Training batches and evaluation users are sharded over ranks and the metric states are sums, so a
DDP fit must finish and write its checkpoint and metrics, and testing the same checkpoint on two
processes must give the single-process numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_script.py")  # the package API, no CLI


@pytest.mark.slow
def test_two_process_fit_and_test_equal_single_process(tiny_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def run(command: str, save_dir: Path, *extra: str, devices: int = 2) -> None:
        args = [
            sys.executable, str(SCRIPT), command, f"--root={tiny_root}",
            f"--save-dir={save_dir}", f"--devices={devices}", *extra,
        ]  # fmt: skip
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]

    run("fit", tmp_path / "fit", "--max-epochs=2")
    fitted = json.loads(next((tmp_path / "fit").rglob("metrics.json")).read_text())
    assert fitted["epochs_run"] == 2 and 0.0 <= fitted["test"]["test/recall@20"] <= 1.0
    ckpt = next((tmp_path / "fit").rglob("*.ckpt"))
    run("test", tmp_path / "single", f"--ckpt={ckpt}", devices=1)
    run("test", tmp_path / "ddp", f"--ckpt={ckpt}")
    one = json.loads(next((tmp_path / "single").rglob("metrics.json")).read_text())["test"]
    two = json.loads(next((tmp_path / "ddp").rglob("metrics.json")).read_text())["test"]
    assert set(one) == set(two) and len(one) == 8
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
