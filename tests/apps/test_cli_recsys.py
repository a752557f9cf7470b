from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmpc.apps.cli import main as mmpc_main
from mmpc.apps.cli.recsys import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models, shared cores

CONFIGS = sorted((Path(__file__).parents[2] / "apps" / "configs" / "recsys").glob("*.yaml"))
TINY = {
    "vbpr.yaml": ["--model.model.init_args.embedding_dim=8"],
    "bm3.yaml": ["--model.model.init_args.embedding_dim=8"],
    "freedom.yaml": [
        "--model.model.init_args.embedding_dim=8",
        "--model.model.init_args.feat_embed_dim=8",
        "--model.model.init_args.knn_k=3",
    ],
}


def test_every_recsys_config_is_covered() -> None:
    assert {c.name for c in CONFIGS} == set(TINY)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_config_runs_through_cli(config: Path, tiny_root: Path, tmp_path: Path) -> None:
    args = [
        "fit", f"--config={config}", f"--data.root={tiny_root}", "--data.batch_size=256",
        "--trainer.fast_dev_run=true", f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        *TINY[config.name],
    ]  # fmt: skip
    assert main(args) == 0


def test_fit_then_test_writes_metrics_and_summarize(
    tiny_root: Path, tmp_path: Path, capsys
) -> None:
    config = next(c for c in CONFIGS if c.name == "vbpr.yaml")
    runs = tmp_path / "runs"
    for seed in (1, 2):
        args = [
            "recsys", "fit", f"--config={config}", f"--data.root={tiny_root}",
            f"--seed_everything={seed}", f"--data.seed={seed}", "--data.batch_size=256",
            "--trainer.max_epochs=2", f"--trainer.logger.init_args.save_dir={runs}",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--model.model.init_args.embedding_dim=8",
        ]  # fmt: skip
        assert mmpc_main(args) == 0
    files = sorted(runs.rglob("metrics.json"))
    assert len(files) == 2
    saved = json.loads(files[0].read_text())
    assert saved["model"] == "VBPR" and saved["epochs_run"] == 2 and saved["best_epoch"] in (0, 1)
    assert 0.0 <= saved["test"]["test/recall@20"] <= 1.0
    ckpt = next(files[0].parent.rglob("*.ckpt"))
    capsys.readouterr()
    assert main(["summarize", str(runs)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metrics"]["test/recall@20"]["n"] == 2
    test_args = [
        "test", f"--config={config}", f"--data.root={tiny_root}", f"--ckpt_path={ckpt}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'test_only'}",
        "--trainer.enable_progress_bar=false", "--model.model.init_args.embedding_dim=8",
    ]  # fmt: skip
    assert main(test_args) == 0
    again = json.loads(next((tmp_path / "test_only").rglob("metrics.json")).read_text())
    assert again["test"]["test/recall@20"] == pytest.approx(saved["test"]["test/recall@20"])
    assert again["best_val"] == saved["best_val"]
