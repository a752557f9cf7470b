"""`mmpc grpo fit`: every config under apps/configs/grpo through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from mmpc.apps.cli.grpo import main
from mmpc.completion.catalog import synthesize

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models, shared cores

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "configs" / "grpo"


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog") / "tiny"
    synthesize("tiny", seed=0, out=root)
    return root


def _fit_t2i(tiny_llama: Path, template: Path, catalog: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "fit",
            "--config",
            str(CONFIGS / "demo_t2i.yaml"),
            "--model.model",
            str(tiny_llama),
            "--model.gguf_file",
            "null",
            "--model.template",
            str(template),
            "--model.lora_r",
            "4",
            "--model.group_size",
            "2",
            "--model.max_new_tokens",
            "4",
            "--model.micro_batch_size",
            "2",
            "--trainer.default_root_dir",  # re-roots the config's CSVLogger save_dir
            str(out / "logs"),
            "--data.catalog",
            str(catalog),
            "--data.batch_size",
            "1",
            *extra,
        ]
    )


def test_every_grpo_config_is_tested() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == [
        "demo_i2t.yaml",
        "demo_t2i.yaml",
        "paper_i2t.yaml",
        "paper_t2i.yaml",
    ]


def test_demo_config_fits_with_tiny_overrides(
    tiny_llama: Path,
    short_template: Path,
    tiny_catalog: Path,
    tmp_path: Path,
    recwarn: pytest.WarningsRecorder,
) -> None:
    code = _fit_t2i(tiny_llama, short_template, tiny_catalog, tmp_path, "--trainer.max_steps=2")
    assert code == 0
    # no items held out: no validation loop, and no warning about an empty one
    assert not [w for w in recwarn if "across ranks is zero" in str(w.message)]
    (metrics,) = (tmp_path / "logs").rglob("metrics.csv")
    frame = pd.read_csv(metrics)
    assert len(frame) == 2
    assert frame["train/rewards/image_similarity/mean"].notna().all()
    assert frame["train/parse_failure_rate"].between(0, 1).all()
    assert (metrics.parent / "reward_curve.png").stat().st_size > 1000
    assert (metrics.parent / "adapter" / "adapter_config.json").is_file()


def test_held_out_items_are_answered_greedily_in_validation(
    tiny_llama: Path, short_template: Path, tiny_catalog: Path, tmp_path: Path
) -> None:
    code = _fit_t2i(
        tiny_llama,
        short_template,
        tiny_catalog,
        tmp_path,
        "--trainer.max_steps=2",
        "--data.val_items=2",
        "--trainer.val_check_interval=1",
    )
    assert code == 0
    (metrics,) = (tmp_path / "logs").rglob("metrics.csv")
    val = pd.read_csv(metrics).dropna(subset=["val/reward"])
    assert val["val/updates"].tolist() == [1, 2]  # after each update
    assert val["val/rewards/json_format/mean"].between(0, 1).all()


@pytest.mark.parametrize("config", ["paper_i2t.yaml", "paper_t2i.yaml"])
def test_paper_configs_parse_and_stop_on_missing_weights(
    config: str,
    tiny_catalog: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the hub library reads the variable at import: set its constant too (no network waits)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code = main(
        [
            "fit",
            "--config",
            str(CONFIGS / config),
            "--trainer.accelerator",
            "cpu",
            "--trainer.max_steps",
            "1",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "logs"),
            "--data.catalog",
            str(tiny_catalog),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3  # missing weights
    assert err[-1].startswith("mmpc grpo: ")
    assert "weights" in err[-1].lower() or "not loadable" in err[-1]


def test_demo_i2t_config_fits_with_tiny_overrides(
    tiny_llm: Path, tiny_catalog: Path, tmp_path: Path
) -> None:
    code = main(
        [
            "fit",
            "--config",
            str(CONFIGS / "demo_i2t.yaml"),
            "--model.model",
            str(tiny_llm),
            "--model.gguf_file",
            "null",
            "--model.cache_dir",
            str(tmp_path / "cache"),
            "--model.perception",
            '{"image_size": 64, "max_iter": 30}',
            "--model.lora_r",
            "4",
            "--model.group_size",
            "2",
            "--model.max_new_tokens",
            "4",
            "--model.micro_batch_size",
            "2",
            "--trainer.max_steps",
            "2",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "logs"),
            "--data.catalog",
            str(tiny_catalog),
            "--data.batch_size",
            "1",
        ]
    )
    assert code == 0
    (metrics,) = (tmp_path / "logs").rglob("metrics.csv")
    frame = pd.read_csv(metrics)
    assert len(frame) == 2
    assert frame["train/rewards/title_similarity/mean"].notna().all()
    assert (metrics.parent / "adapter" / "adapter_config.json").is_file()


def test_grpo_fit_resumes_exactly_from_its_last_checkpoint(
    tiny_llama: Path, short_template: Path, tiny_catalog: Path, tmp_path: Path
) -> None:
    """Killed after step 2 and resumed to step 3 == 3 uninterrupted steps, bit for bit."""
    from safetensors.torch import load_file

    ckpt = [
        "--trainer.enable_checkpointing=true",
        "--trainer.callbacks+=ModelCheckpoint",
        f"--trainer.callbacks.dirpath={tmp_path / 'ckpt'}",
        "--trainer.callbacks.save_last=true",
        "--trainer.callbacks.save_top_k=0",
        "--trainer.callbacks.every_n_train_steps=1",
    ]
    args = (tiny_llama, short_template, tiny_catalog)
    full, part = tmp_path / "full", tmp_path / "part"
    assert _fit_t2i(*args, full, "--trainer.max_steps=3", f"--model.adapter_dir={full}/a") == 0
    adapter = f"--model.adapter_dir={part}/a"
    assert _fit_t2i(*args, part, "--trainer.max_steps=2", adapter, *ckpt) == 0
    last = tmp_path / "ckpt" / "last.ckpt"
    assert last.is_file()
    resumed = _fit_t2i(*args, part, "--trainer.max_steps=3", adapter, f"--ckpt_path={last}")
    assert resumed == 0
    want = load_file(full / "a" / "adapter_model.safetensors")
    got = load_file(part / "a" / "adapter_model.safetensors")
    assert want.keys() == got.keys() and len(want) > 0
    for name, tensor in want.items():
        assert torch.equal(tensor, got[name]), name
