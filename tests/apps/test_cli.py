"""The `mmpc` dispatcher: help, unknown commands and routing to sub-command modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmpc.apps import cli


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
