"""The bench's GRPO stage, its pure parts: the step-wise data order, the merged reward log, the
settings read from a `mmpc grpo fit` YAML, the checks against the completer, the derived
`<name>+grpo` completer and where the stages sit in the graph. The stage killed mid-training and
resumed from its checkpoint is tested on the tiny bench in test_bench.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmpc.apps.bench.config import GRPORunConfig
from mmpc.apps.bench.graph import build_stages, conditions
from mmpc.apps.bench.kinds.grpo import (
    check_run,
    grpo_settings,
    merge_logs,
    tuned_completer,
)
from mmpc.apps.cli import bench as bench_cli

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "apps" / "configs" / "bench" / "tiny.yaml"


def _log(path: Path, steps: list[int], reward: float) -> None:
    path.parent.mkdir(parents=True)
    pd.DataFrame({"step": steps, "train/reward": [reward] * len(steps)}).to_csv(path, index=False)


def test_merge_logs_keeps_each_step_once_the_later_attempt_winning(tmp_path: Path) -> None:
    _log(tmp_path / "logs" / "version_0" / "metrics.csv", [0, 1, 2], 1.0)
    _log(tmp_path / "logs" / "version_1" / "metrics.csv", [2, 3], 2.0)
    _log(tmp_path / "logs" / "version_10" / "metrics.csv", [4], 3.0)  # numeric, not text order
    log = merge_logs(tmp_path)
    assert log["step"].tolist() == [0, 1, 2, 3, 4]
    assert log["train/reward"].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert log["attempt"].tolist() == [0, 0, 1, 1, 2]


def test_merge_logs_puts_validation_rows_beside_their_step(tmp_path: Path) -> None:
    # Lightning's CSVLogger writes validation metrics in rows of their own
    first = tmp_path / "logs" / "version_0" / "metrics.csv"
    first.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "step": [0, 0, 1, 1, 1],  # the logger's step of a validation row lags
            "train/reward": [None, 1.0, 1.5, None, None],
            "val/reward": [0.5, None, None, 0.7, 0.9],  # step 2 validated twice: the later wins
            "val/updates": [0, None, None, 2, 2],  # the policy after that many updates
        }
    ).to_csv(first, index=False)
    log = merge_logs(tmp_path)
    assert log["step"].tolist() == [0, 1, 2]
    assert log["train/reward"].tolist()[:2] == [1.0, 1.5] and pd.isna(log["train/reward"][2])
    assert log["val/reward"].tolist()[0] == 0.5 and log["val/reward"].tolist()[2] == 0.9
    assert pd.isna(log["val/reward"][1])


def test_settings_come_from_the_grpo_yaml_with_the_run_overrides() -> None:
    run = GRPORunConfig(
        "smollm2-retrieval",
        "t2i",
        config="apps/configs/grpo/demo_t2i.yaml",
        model={"group_size": 2, "adapter_dir": "/elsewhere"},
        data={"batch_size": 1},
    )
    settings = grpo_settings(run)
    assert settings["model"]["group_size"] == 2 and settings["model"]["task"] == "t2i"
    assert settings["model"]["answer_prefix"] == '{"prompt": "'  # from the YAML
    assert "adapter_dir" not in settings["model"]  # the stage sets it
    assert settings["data"]["batch_size"] == 1
    assert "catalog" not in settings["data"] and "synthesize_preset" not in settings["data"]
    with pytest.raises(ValueError, match="not found"):
        grpo_settings(GRPORunConfig("x", config="nope/missing.yaml"))


def test_runs_are_checked_against_their_completer_and_derive_a_plus_grpo_completer() -> None:
    cfg, _, _ = bench_cli.parse_config(["--config", str(TINY)])
    run = cfg.grpo[0]
    comp = cfg.completer(run.completer)
    check_run(run, comp)
    with pytest.raises(ValueError, match="answer_prefix"):
        bare = GRPORunConfig(run.completer, "t2i", run.config, model={"answer_prefix": ""})
        check_run(bare, comp)
    with pytest.raises(ValueError, match="go together"):
        check_run(GRPORunConfig(run.completer, "t2i", run.config, validate_every_n_steps=2), comp)
    with pytest.raises(ValueError, match="go together"):
        check_run(GRPORunConfig(run.completer, "t2i", run.config, data={"val_items": 3}), comp)
    check_run(
        GRPORunConfig(
            run.completer, "t2i", run.config, data={"val_items": 3}, validate_every_n_steps=2
        ),
        comp,
    )
    with pytest.raises(ValueError, match="has no task 'i2t'"):
        check_run(GRPORunConfig(run.completer, "i2t", run.config), comp)
    with pytest.raises(ValueError, match="not one of the completers"):
        cfg.completer("nobody")
    tuned = tuned_completer(comp, "t2i", Path("/run/grpo/x/t2i/adapter"))
    assert tuned.name == "smollm2-retrieval+grpo" and tuned.tasks == ["t2i"]
    args = tuned.generator_spec("t2i")["init_args"]
    assert args["adapter"] == "/run/grpo/x/t2i/adapter"
    assert args["answer_prefix"] == comp.generator["init_args"]["answer_prefix"]
    assert tuned.renderer == comp.renderer and tuned.on_parse_failure == comp.on_parse_failure


def test_grpo_stages_sit_between_the_catalogue_and_the_plus_grpo_completion() -> None:
    cfg, _, _ = bench_cli.parse_config(["--config", str(TINY)])
    stages = {s.name: s for s in build_stages(cfg)}
    assert stages["grpo/smollm2-retrieval/t2i"].inputs == ("catalog",)
    # the GRPO YAML's content, not only its path, is part of the fingerprint
    settings = stages["grpo/smollm2-retrieval/t2i"].config["settings"]
    assert settings["model"]["rewards"]["image_similarity"]["init_args"]["scale"] == 4.0
    assert stages["complete/smollm2-retrieval+grpo/t2i"].inputs == (
        "catalog",
        "grpo/smollm2-retrieval/t2i",
    )
    assert stages["cqbench/smollm2-retrieval+grpo/t2i"].inputs[-1] == (
        "complete/smollm2-retrieval+grpo/t2i"
    )
    assert ("smollm2-retrieval+grpo", "completer") in conditions(cfg, "t2i")
    assert "recbench/VBPR/t2i/smollm2-retrieval+grpo/seed0" in stages
    # the adapter path is not part of the fingerprint config: it comes from the input stage
    config = stages["complete/smollm2-retrieval+grpo/t2i"].config
    assert "adapter" not in config["completer"]["generator"]["init_args"]
