"""The served backend against real ``transformers serve`` servers (see conftest.py and
served_checks.py, which did the work once; these tests check what it measured and left behind)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

COMPLETER_DIR = ("completion", "served-qwen2.5-vl-7b", "i2t")


def _error_lines(stderr: str) -> list[str]:
    """The refusal lines (the CLI prints its device/output banner line before the run)."""
    lines = stderr.strip().splitlines()
    assert not any("Traceback" in line for line in lines), stderr
    return [line for line in lines if line.startswith("mmpc complete: ")]


def _answers(records: list[dict[str, Any]]) -> dict[str, str]:
    return {r["item_id"]: r["raw"] for r in records}


@pytest.mark.parametrize("task", ["t2i", "i2t"])
def test_greedy_answers_equal_the_in_process_backends(served: dict[str, Any], task: str) -> None:
    case = served["summary"]["parity"][task]
    assert len(case["local"]) == len(case["served"]) == 20
    same = sum(a == b for a, b in zip(case["local"], case["served"], strict=True))
    assert same >= 19, list(zip(case["local"], case["served"], strict=True))
    assert all(u["completion_tokens"] > 0 and u["prompt_tokens"] > 0 for u in case["usage"])


def test_uninterrupted_cli_run_writes_every_item_once(served: dict[str, Any]) -> None:
    summary = served["summary"]
    reference = summary["reference"]
    assert reference["code"] == 0
    assert [r["item_id"] for r in reference["records"]] == summary["expected_ids"]
    for record in reference["records"]:
        details = record["served"]
        assert details["retries"] == 0 and details["latency_s"] > 0
        assert details["usage"]["completion_tokens"] > 0
        assert details["finish_reason"] in ("stop", "length")


def test_faults_are_retried_to_the_same_answers(served: dict[str, Any]) -> None:
    summary = served["summary"]
    faults = summary["faults"]
    assert faults["code"] == 0
    assert faults["injected"] == {"429": 1, "503": 1, "drop": 1, "slow": 1}
    assert _answers(faults["records"]) == _answers(summary["reference"]["records"])
    assert sum(r["served"]["retries"] for r in faults["records"]) == 4


def test_an_answer_that_is_not_text_is_the_items_error(served: dict[str, Any]) -> None:
    notext = served["summary"]["notext"]
    assert notext["code"] == 0
    [record] = notext["records"]
    assert record["output"] is None and record["raw"] == ""
    assert record["error"].startswith("the answer is not text (tool calls")


def test_server_killed_mid_run_stops_with_one_line_and_keeps_the_finished_items(
    served: dict[str, Any],
) -> None:
    killed = served["summary"]["killed"]
    assert killed["code"] == 3
    [line] = _error_lines(killed["stderr"])
    assert killed["url"] in line and "failed after 2 retries" in line
    assert killed["records_kept"] == 8  # the two batches finished before the kill


def test_rerun_after_restart_completes_exactly_once_equal_to_an_uninterrupted_run(
    served: dict[str, Any],
) -> None:
    summary = served["summary"]
    rerun = summary["rerun"]
    assert rerun["code"] == 0
    ids = [r["item_id"] for r in rerun["records"]]
    assert sorted(ids) == sorted(summary["expected_ids"]) and len(set(ids)) == len(ids)
    assert _answers(rerun["records"]) == _answers(summary["reference"]["records"])
    assert rerun["summary"]["done_this_run"] == 12 and rerun["summary"]["missing"] == 0


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("unreachable", 3, "cannot reach the endpoint"),
        ("unknown_model", 2, "does not serve model 'no-such-model'"),
        ("missing_key", 2, "$MMPC_UNSET_KEY is not set"),
    ],
)
def test_bad_endpoint_settings_are_one_line_with_their_exit_code(
    served: dict[str, Any], case: str, code: int, words: str
) -> None:
    error = served["summary"]["errors"][case]
    assert error["code"] == code
    [line] = _error_lines(error["stderr"])
    assert words in line, line
    if case == "unreachable":
        assert error["url"] in line
    assert not error["wrote"]  # refused before the writer created anything


def test_the_api_key_appears_nowhere(served: dict[str, Any]) -> None:
    key = served["key"].encode()
    assert key not in served["log"].read_bytes()
    files = [p for p in served["out"].rglob("*") if p.is_file()]
    assert any(p.name == "run_config.json" for p in files)
    assert [p for p in files if key in p.read_bytes()] == []
