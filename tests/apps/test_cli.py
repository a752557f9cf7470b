"""The `mmpc` dispatcher: help, unknown commands, routing to sub-command modules, the configs
locator, and a closed standard output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmpc.apps import cli
from mmpc.apps.config_files import find_config, shipped_configs

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    choices = "data, complete, recsys, grpo, bench, report"
    assert err.splitlines() == [f"mmpc: unknown command 'frobnicate' (choose from {choices})"]


def test_routes_to_subcommand_module(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class FakeModule:
        @staticmethod
        def main(argv: list[str]) -> int:
            seen.append(argv)
            return 3

    monkeypatch.setattr(cli.importlib, "import_module", lambda name: FakeModule)
    assert cli.main(["data", "info", "x"]) == 3
    assert seen == [["info", "x"]]


def test_console_script_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmpc.apps.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: mmpc" in proc.stdout


def test_lightning_help_comes_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    for name, command in cli.COMMANDS.items():
        if command.help is None:
            continue
        assert cli.main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: mmpc {name} {{")
        assert f"configs in {shipped_configs(command.help.configs)}:" in out
        for yaml_file in sorted(shipped_configs(command.help.configs).glob("*.yaml")):
            assert f"  {yaml_file.name}\n" in out


def test_find_config_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    demo = find_config("apps/configs/bench/demo.yaml")
    assert demo is not None and demo.is_file() and demo.is_absolute()
    assert demo == shipped_configs("bench/demo.yaml")
    assert find_config("apps/configs/bench/nope.yaml") is None
    assert find_config("bench/demo.yaml") is None  # only the documented spelling is shipped
    assert find_config(tmp_path / "nope.yaml") is None
    mine = tmp_path / "apps" / "configs" / "bench" / "demo.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: mine\n")
    assert find_config("apps/configs/bench/demo.yaml") == Path("apps/configs/bench/demo.yaml")


def _plan(cwd: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mmpc.apps.cli", "bench", "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_bench_plans_the_demo_study_from_any_folder(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert plan == _plan(ROOT)
    assert plan[0].startswith("plan for run 'demo'") and not plan[-3].startswith("totals: 0 ")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["recsys", "--help"], ["data", "--help"], ["bench", "--dry-run"]],
    ids=lambda argv: " ".join(argv),
)
def test_a_closed_stdout_ends_quietly(argv: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mmpc.apps.cli", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write)
    # argparse's own help printer (``mmpc data --help``) swallows the error and exits 0
    assert proc.returncode in {0, cli.EXIT_BROKEN_PIPE}, proc.stderr
    assert proc.stderr == ""
    if argv[0] != "data":
        assert proc.returncode == cli.EXIT_BROKEN_PIPE


def test_help_piped_into_head_has_no_traceback() -> None:
    mmpc = Path(sys.executable).with_name("mmpc")
    proc = subprocess.run(
        f"'{mmpc}' --help | head -n 1; '{mmpc}' bench --dry-run | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.stdout.splitlines()[0] == "usage: mmpc [--version] [--verbose] COMMAND [ARGS...]"
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
