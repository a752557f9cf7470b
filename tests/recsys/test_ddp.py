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

from mmpc.apps.cli.recsys import main

CONFIG = Path(__file__).parents[2] / "apps" / "configs" / "recsys" / "vbpr.yaml"
COMMON = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--model.model.init_args.embedding_dim=8",
]


@pytest.mark.slow
def test_two_process_fit_and_test_equal_single_process(tiny_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def ddp(command: str, *extra: str) -> None:
        args = [
            sys.executable, "-m", "mmpc.apps.cli", "recsys", command, f"--config={CONFIG}",
            f"--data.root={tiny_root}", "--trainer.accelerator=cpu", "--trainer.devices=2",
            "--trainer.strategy=ddp", *COMMON, *extra,
        ]  # fmt: skip
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]

    ddp("fit", "--data.batch_size=256", "--trainer.max_epochs=2",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'fit'}")  # fmt: skip
    fitted = json.loads(next((tmp_path / "fit").rglob("metrics.json")).read_text())
    assert fitted["epochs_run"] == 2 and 0.0 <= fitted["test"]["test/recall@20"] <= 1.0
    ckpt = next((tmp_path / "fit").rglob("*.ckpt"))
    single = [
        "test", f"--config={CONFIG}", f"--data.root={tiny_root}", f"--ckpt_path={ckpt}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'single'}", *COMMON,
    ]  # fmt: skip
    assert main(single) == 0
    ddp("test", f"--ckpt_path={ckpt}", f"--trainer.logger.init_args.save_dir={tmp_path / 'ddp'}")
    one = json.loads(next((tmp_path / "single").rglob("metrics.json")).read_text())["test"]
    two = json.loads(next((tmp_path / "ddp").rglob("metrics.json")).read_text())["test"]
    assert set(one) == set(two) and len(one) == 8
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
