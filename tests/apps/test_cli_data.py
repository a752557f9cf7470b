"""``mmpc data ...`` through the real entry points."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmpc.apps.cli import data as data_cli
from mmpc.apps.cli import main as mmpc_main
from mmpc.completion.catalog import Catalog


def test_synth_info_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cat"
    assert (
        mmpc_main(
            [
                "data",
                "synth",
                "--preset",
                "tiny",
                "--seed",
                "2",
                "--out",
                str(out),
                "--image-size",
                "32",
                "--cqbench-n",
                "4",
                "--grpo-n",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "Video_Games" in printed
    cat = Catalog.open(out)
    assert cat.load_image(cat.sample("grpo")[0]).size == (32, 32)
    assert len(cat.sample("cqbench")) == 12 and len(cat.sample("grpo")) == 9

    assert data_cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "SYNTHETIC catalogue" in info and "total" in info and "seed 2" in info

    assert (
        data_cli.main(
            [
                "export-mmrec",
                "--catalog",
                str(out),
                "--out",
                str(tmp_path / "mm"),
                "--category",
                "All_Beauty",
            ]
        )
        == 0
    )
    assert "SYNTHETIC" in capsys.readouterr().out
    inter = pd.read_csv(tmp_path / "mm" / "All_Beauty.inter", sep="\t")
    assert len(inter) == cat.summary()["All_Beauty"]["interactions"]


def test_amazon_command(amazon_raw, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, expected = amazon_raw
    out = tmp_path / "amz"
    code = data_cli.main(
        [
            "amazon",
            "--category",
            "Video_Games",
            "--raw-dir",
            str(root),
            "--images-dir",
            str(root / "images"),
            "--out",
            str(out),
            "--cqbench-n",
            "2",
            "--grpo-n",
            "2",
            "--split",
            "chrono",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "amazon-reviews-2023" in printed and "SYNTHETIC" not in printed
    assert "unsafe_id=2" in printed
    assert sorted(Catalog.open(out).items.index) == expected["items"]


def test_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert data_cli.main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmpc data info:") and "manifest.json is missing" in err
    assert "\n" not in err
    code = data_cli.main(
        [
            "amazon",
            "--category",
            "Video_Games",
            "--raw-dir",
            str(tmp_path),
            "--images-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "neither Video_Games.jsonl" in capsys.readouterr().err
    code = data_cli.main(
        [
            "fetch-images",
            "--catalog-raw",
            str(tmp_path),
            "--category",
            "Electronics",
            "--out",
            str(tmp_path / "img"),
        ]
    )
    assert code == 2
    assert "meta_Electronics.jsonl" in capsys.readouterr().err
