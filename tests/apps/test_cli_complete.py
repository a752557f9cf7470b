"""Every completion config through the real CLI entry point, with tiny models as overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmpc.apps import cli as dispatcher
from mmpc.apps.cli.complete import main
from mmpc.completion.catalog import Catalog
from mmpc.completion.writer import RUN_CONFIG

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "configs" / "completion"
PAPER = sorted(p for p in CONFIGS.glob("*.yaml") if p.stem.startswith(("qwen", "gemma")))


def _common(catalog: Catalog, run: Path) -> list[str]:
    return [
        f"--data.catalog={catalog.root}",
        "--data.limit=1",
        "--data.num_workers=0",
        f"--writer.run_dir={run}",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
    ]


def _records(run: Path, completer: str, task: str) -> list[dict]:
    path = run / "completion" / completer / task / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_all_six_models_times_two_tasks_have_configs() -> None:
    names = {p.stem for p in PAPER}
    for size in ("7b", "32b", "72b"):
        assert {f"qwen2.5-vl-{size}_i2t", f"qwen2.5-vl-{size}_t2i"} <= names
    for size in ("4b", "12b", "27b"):
        assert {f"gemma-3-{size}_i2t", f"gemma-3-{size}_t2i"} <= names
    assert len(PAPER) == 12


@pytest.mark.parametrize("config", PAPER, ids=[p.stem for p in PAPER])
def test_paper_config_runs_with_tiny_models(
    config: Path,
    tiny_catalog: Catalog,
    tiny_qwen: Path,
    tiny_gemma: Path,
    tiny_sd3: Path,
    tmp_path: Path,
) -> None:
    tiny = tiny_qwen if config.stem.startswith("qwen") else tiny_gemma
    args = [
        "predict",
        "--config",
        str(config),
        *_common(tiny_catalog, tmp_path),
        f"--model.generator.init_args.model={tiny}",
        "--model.generator.init_args.quantization=none",
        "--model.generator.init_args.compute_dtype=float32",
        '--model.generator.init_args.generation={"max_new_tokens": 4}',
    ]
    task = config.stem.split("_")[-1]
    if task == "t2i":
        args += [
            f"--model.renderer.init_args.model={tiny_sd3}",
            "--model.renderer.init_args.dtype=float32",
            "--model.renderer.init_args.height=32",
            "--model.renderer.init_args.width=32",
            "--model.renderer.init_args.max_sequence_length=16",
            "--model.renderer.init_args.num_inference_steps=1",
        ]
    assert main(args) == 0
    [record] = _records(tmp_path, config.stem.split("_")[0], task)
    assert record["item_id"] == tiny_catalog.sample("cqbench")[0] and record["task"] == task


def test_offline_retrieval_i2t_config(tiny_catalog: Catalog, tmp_path: Path) -> None:
    config = CONFIGS / "retrieval-baseline_i2t.yaml"
    args = [
        "predict",
        "--config",
        str(config),
        *_common(tiny_catalog, tmp_path),
        "--model.generator.init_args.image_size=32",
    ]
    assert dispatcher.main(["complete", *args]) == 0
    [record] = _records(tmp_path, "retrieval-baseline", "i2t")
    assert record["error"] is None and record["output"] in set(tiny_catalog.items["title"])


def test_offline_vlm_i2t_config(tiny_catalog: Catalog, tiny_llm: Path, tmp_path: Path) -> None:
    config = CONFIGS / "offline-vlm_i2t.yaml"
    args = [
        "predict",
        "--config",
        str(config),
        *_common(tiny_catalog, tmp_path),
        f"--model.generator.init_args.model={tiny_llm}",
        f"--model.generator.init_args.cache_dir={tmp_path / 'cache'}",
        '--model.generator.init_args.generation={"max_new_tokens": 6}',
    ]
    assert dispatcher.main(["complete", *args]) == 0
    [record] = _records(tmp_path, "offline-vlm-smollm2", "i2t")
    assert record["raw"].startswith('{"title": "')  # the prefill opens the decoded answer
    fingerprint = json.loads(
        (tmp_path / "completion" / "offline-vlm-smollm2" / "i2t" / RUN_CONFIG).read_text()
    )
    assert "offline stand-in" in fingerprint["generator"]["stand_in"]


def test_offline_smollm2_t2i_config(tiny_catalog: Catalog, tiny_llm: Path, tmp_path: Path) -> None:
    # The real SmolLM2 conversion is covered by the slow test in test_backends.py.
    config = CONFIGS / "smollm2-retrieval-baseline_t2i.yaml"
    args = [
        "predict",
        "--config",
        str(config),
        *_common(tiny_catalog, tmp_path),
        f"--model.generator.init_args.model={tiny_llm}",
        '--model.generator.init_args.generation={"max_new_tokens": 4}',
    ]
    assert main(args) == 0
    [record] = _records(tmp_path, "smollm2-retrieval-baseline", "t2i")
    images = tmp_path / "completion" / "smollm2-retrieval-baseline" / "t2i" / "images"
    assert (images / f"{record['item_id']}.png").is_file()  # on_parse_failure: title


def test_missing_weights_is_one_line_and_exit_3(
    tiny_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CONFIGS / "qwen2.5-vl-7b_i2t.yaml"
    code = dispatcher.main(
        ["complete", "predict", "--config", str(config), *_common(tiny_catalog, tmp_path)]
    )
    assert code == 3  # missing weights
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "mmpc complete: cannot load multimodal LLM weights 'Qwen/Qwen2.5-VL-7B-Instruct'"
    )
    assert "--model.generator.init_args.model=/path" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_bad_arguments_exit_nonzero(tmp_path: Path) -> None:
    assert main(["predict", "--data.task=x2y"]) != 0
    assert main(["fit"]) != 0  # only predict exists
