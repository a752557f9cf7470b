"""The crash-safe writer: partial lines, repair, merge, resume through a real Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightning.pytorch import Trainer

from mmpc.completion.backends.retrieval import RetrievalTitleBaseline
from mmpc.completion.catalog import Catalog
from mmpc.completion.data import CompletionDataModule
from mmpc.completion.module import CompletionModule
from mmpc.completion.writer import (
    CompletionWriter,
    image_path,
    merge_records,
    output_dir,
    read_jsonl,
    read_records,
    repair_jsonl,
)


def _rec(item_id: str, output: str = "x") -> str:
    return json.dumps({"item_id": item_id, "output": output}) + "\n"


def test_partial_last_line_is_dropped_then_repaired(tmp_path: Path) -> None:
    path = tmp_path / "rank0.jsonl"
    path.write_text(_rec("a") + _rec("b") + '{"item_id": "c", "outp')
    records, dropped = read_jsonl(path)
    assert [r["item_id"] for r in records] == ["a", "b"]
    assert dropped == 1
    assert repair_jsonl(path) == len('{"item_id": "c", "outp')
    assert path.read_text() == _rec("a") + _rec("b")
    assert repair_jsonl(path) == 0
    with path.open("a") as fh:  # appending after a repair gives valid lines again
        fh.write(_rec("c"))
    assert [r["item_id"] for r in read_jsonl(path)[0]] == ["a", "b", "c"]


def test_merge_keeps_every_item_once_and_removes_parts(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "records.jsonl").write_text(_rec("a", "first"))
    (tmp_path / "parts" / "rank0.jsonl").write_text(_rec("a", "dup") + _rec("b"))
    (tmp_path / "parts" / "rank1.jsonl").write_text(_rec("c") + '{"item_id": "d"')
    assert set(read_records(tmp_path)) == {"a", "b", "c"}
    records, per_part = merge_records(tmp_path, order=["c", "b", "a"])
    assert per_part == {"rank0": 2, "rank1": 1}
    assert records["a"]["output"] == "first"
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == ["c", "b", "a"]
    assert not (tmp_path / "parts").exists()


def test_paths_refuse_unsafe_names(tmp_path: Path) -> None:
    assert output_dir(tmp_path, "qwen2.5-vl-7b", "i2t") == tmp_path / "completion/qwen2.5-vl-7b/i2t"
    with pytest.raises(ValueError, match="not a plain folder name"):
        output_dir(tmp_path, "../evil", "i2t")
    with pytest.raises(ValueError, match="not usable as a file name"):
        image_path(tmp_path, "../../etc/passwd")
    assert image_path(tmp_path, "SYN-AB-00001").name == "SYN-AB-00001.png"


def _run(catalog: Catalog, run_dir: Path, limit: int, features: str = "color-histogram") -> dict:
    module = CompletionModule(
        completer="retrieval-baseline",
        generator=RetrievalTitleBaseline(features=features),
        task="i2t",
    )
    dm = CompletionDataModule(str(catalog.root), task="i2t", limit=limit, batch_size=2)
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CompletionWriter(str(run_dir))],
    )
    trainer.predict(module, datamodule=dm, return_predictions=False)
    out = output_dir(run_dir, "retrieval-baseline", "i2t")
    return json.loads((out / "summary.json").read_text())


def test_restart_skips_done_items_and_checks_configuration(
    tiny_catalog: Catalog, tmp_path: Path
) -> None:
    first = _run(tiny_catalog, tmp_path, limit=3)
    assert first | {"merged_parts": None} == {
        "completer": "retrieval-baseline",
        "task": "i2t",
        "total": 3,
        "done_this_run": 3,
        "skipped": 0,
        "failed_parses": 0,
        "sample_size": 3,
        "missing": 0,
        "merged_parts": None,
    }
    second = _run(tiny_catalog, tmp_path, limit=5)
    assert (second["total"], second["done_this_run"], second["skipped"]) == (5, 2, 3)
    third = _run(tiny_catalog, tmp_path, limit=5)  # nothing left: the loop is skipped
    assert (third["total"], third["done_this_run"], third["skipped"]) == (5, 0, 5)
    out = output_dir(tmp_path, "retrieval-baseline", "i2t")
    ids = [json.loads(line)["item_id"] for line in (out / "records.jsonl").read_text().splitlines()]
    assert ids == tiny_catalog.sample("cqbench")[:5]
    with pytest.raises(ValueError, match=r"another configuration \(differs in \['generator'\]\)"):
        _run(tiny_catalog, tmp_path, limit=5, features="stlpips-alexnet")
