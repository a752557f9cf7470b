"""Served completers (``OpenAIChatBackend``) in ``mmpc bench``: the plan counts requests and
tokens, shards split the endpoint's concurrency, a launched server is stopped when the stage
fails, the fingerprint leaves transport settings and the price out, the report's served table.
A whole bench against a real ``transformers serve`` is in test_served_bench_e2e.py."""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from mmpc.apps import cli
from mmpc.apps.bench.config import SERVED_TRANSPORT, CompleterConfig
from mmpc.apps.bench.kinds.complete import (
    build_generator,
    complete_parts,
    complete_stage,
    shard_concurrency,
)
from mmpc.apps.bench.plan import make_plan
from mmpc.apps.bench.stages import StageContext, StageUnavailableError
from mmpc.apps.cli.bench import parse_config
from mmpc.apps.report.accounting import served_table
from mmpc.apps.report.data import ReportInputs
from mmpc.completion.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "apps" / "configs" / "bench" / "paper.yaml"
PAPER_SERVED = ROOT / "apps" / "configs" / "bench" / "paper_served.yaml"
SERVED = "mmpc.completion.backends.OpenAIChatBackend"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _served(name: str = "api", **init_args: object) -> CompleterConfig:
    args = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_concurrency": 32}
    return CompleterConfig(
        name, ["i2t"], {"class_path": SERVED, "init_args": {**args, **init_args}}, batch_size=4
    )


def test_paper_served_dry_run_counts_requests_and_tokens_apart_from_hours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", f"--config={PAPER_SERVED}", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    per = [line for line in out if "served by http://127.0.0.1:80" in line]
    assert len(per) == 12  # six models × two tasks
    items = 9000  # the paper preset's CQBench sample
    for line in per:
        tokens = 128 if "/i2t:" in line else 256
        assert f"{items} requests, ≤ {items * tokens} completion tokens" in line, line
    (total,) = [line for line in out if line.startswith("served: ")]
    assert total.startswith(f"served: {12 * items} requests to 6 endpoint(s), ≤ ")
    assert f"≤ {6 * items * (128 + 256)} completion tokens" in total
    assert "not in the accelerator-hours" in total
    # Only the renders (0.5 s/item for six T→I completers) are accelerator time here.
    (estimate,) = [line for line in out if line.startswith("estimate: ")]
    assert estimate.startswith(f"estimate: {6 * items * 0.5 / 3600:.1f} h completion + 0.0 h GRPO")


def test_a_plan_without_served_completers_has_no_served_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", f"--config={PAPER}", "--dry-run"]) == 0
    assert "served" not in capsys.readouterr().out


def test_a_price_gives_the_plan_a_cost_bound() -> None:
    cfg, _, _ = parse_config([f"--config={PAPER_SERVED}", "--dry-run"])
    cfg.completers[0].price_per_million_tokens = {"prompt": 2.5, "completion": 10.0}
    plan = make_plan(cfg)
    first = plan.served[0]
    expect = (first.prompt_tokens * 2.5 + first.max_completion_tokens * 10.0) / 1e6
    assert first.max_cost == pytest.approx(expect)
    assert all(c.max_cost is None for c in plan.served[2:])  # only gemma-3-4b is priced
    assert f"cost ≤ ${expect:,.2f}" in plan.lines[1]


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match="price_per_million_tokens"):
        CompleterConfig("x", price_per_million_tokens={"prompt": -1.0})


@pytest.mark.parametrize(("total", "shards"), [(32, 4), (16, 3), (1, 4), (5, 2), (7, 1)])
def test_shards_split_the_endpoints_concurrency(total: int, shards: int) -> None:
    per = shard_concurrency(total, shards)
    assert per >= 1
    assert per * shards >= min(total, shards) and (per - 1) * shards < total
    gen = build_generator(_served(max_concurrency=total), "i2t", shards)
    assert gen.max_concurrency == per
    assert build_generator(_served(max_concurrency=total), "i2t").max_concurrency == total


def test_fingerprint_settings_leave_out_transport_and_price() -> None:
    from mmpc.completion.backends.served import _NOT_IDENTITY

    assert set(SERVED_TRANSPORT) == set(_NOT_IDENTITY)  # the backend's own describe() agrees
    local = CompleterConfig("local", generator={"class_path": "TextLLMBackend", "init_args": {}})
    expect = asdict(local)
    expect.pop("price_per_million_tokens")
    assert local.settings() == expect  # not served: the same config as before the new field
    a = _served()
    a.price_per_million_tokens = {"prompt": 1.0}
    b = _served(base_url="http://10.0.0.1:8000/v1", max_concurrency=2, api_key_env="K")
    assert a.settings() == b.settings()
    assert _served(model="other").settings() != a.settings()


def test_a_launched_server_is_stopped_when_the_stage_fails(
    tiny_catalog: Catalog, tmp_path: Path
) -> None:
    """A real HTTP server (Python's, which answers no chat request) launched by the stage: the
    stage ends unavailable naming the URL, and the server is gone afterwards."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    launch = {
        "command": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        "health_url": url + "/",
        "startup_timeout_s": 60,
        "stop_timeout_s": 5,
        "log": str(tmp_path / "server.log"),
    }
    spec = _served(base_url=url + "/v1", launch=launch, retry={"max_retries": 0})
    out = tmp_path / "stage"
    out.mkdir()
    ctx = StageContext(name="complete/api/i2t", out=out, run_dir=tmp_path, inputs={})
    assert complete_parts(spec, lambda ctx: tiny_catalog.root)(ctx, 4) == []  # one owner
    run = complete_stage(spec, "i2t", 0, "cpu", lambda ctx: tiny_catalog.root)
    with pytest.raises(StageUnavailableError, match=f"the endpoint {url}/v1 failed"):
        run(ctx)
    time.sleep(0.5)
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))  # nothing listens: the server was stopped
    assert "GET / " in (tmp_path / "server.log").read_text()  # it did run


def test_served_table_sums_records_and_prices(tmp_path: Path) -> None:
    """``mmpc report`` on a run folder: requests = items + retries, token sums, cost."""
    from mmpc.apps.report.load import load_run

    run = tmp_path / "run"
    stage = run / "complete" / "api" / "i2t"
    folder = stage / "completion" / "api" / "i2t"
    folder.mkdir(parents=True)
    (stage / "manifest.json").write_text("{}")
    records = [
        {
            "item_id": f"i{k}",
            "output": None if k == 2 else f"title {k}",
            "error": "the answer is not text" if k == 2 else None,
            "served": {
                "latency_s": 0.1,
                "retries": k % 2,
                "usage": {"prompt_tokens": 100, "completion_tokens": 10 + k},
                "finish_reason": "stop",
            },
        }
        for k in range(4)
    ]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    price = {"prompt": 1.0, "completion": 4.0}
    config = {"name": "t", "completers": [{"name": "api", "price_per_million_tokens": price}]}
    (run / "bench_config.json").write_text(json.dumps(config))
    (run / "status.json").write_text("{}")
    inp = load_run(run)
    row = inp.served.iloc[0]
    assert (row["items"], row["requests"], row["retries"]) == (4, 6, 2)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (400, 46)
    assert row["cost_usd"] == pytest.approx((400 * 1.0 + 46 * 4.0) / 1e6)
    counts = inp.counts.set_index("completer").loc["api"]
    assert counts["parse_failures"] == 1  # the not-text answer is counted with the others
    table = served_table(inp)
    assert table is not None and table.shown.loc[0, "cost_usd"] == "$0.0006"
    assert served_table(ReportInputs(served=None)) is None
    assert served_table(ReportInputs(served=pd.DataFrame())) is None
