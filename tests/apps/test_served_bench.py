"""Served completers (``OpenAIChatBackend``) in ``mmpc bench``: the plan counts requests and
tokens, shards split the endpoint's concurrency, a launched server is stopped when the stage
fails, the fingerprint leaves transport settings and the price out, the report's served table.
A whole bench against a real ``transformers serve`` is in test_served_bench_e2e.py."""

from __future__ import annotations

import json
import socket
import subprocess
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


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def _isolated(argv: list[str]) -> list[str]:
    """``argv`` in a new network namespace whose only interface, the loopback, is up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


@pytest.mark.slow
def test_tiny_bench_with_a_served_completer_against_transformers_serve(tmp_path: Path) -> None:
    """The tiny bench with one served T→I writer: SmolLM2 behind a real ``transformers serve``
    that the stage launches (``launch:``) in a private network namespace and stops at its end.
    The report shows the completer's counts and its served line; the key is nowhere."""
    import os
    import secrets
    import shutil

    import yaml

    from mmpc.completion.backends.textllm import convert_gguf, smollm2_gguf

    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.fail("needs root with `unshare` and `ip` to run the server in a private namespace")
    smol = convert_gguf(smollm2_gguf())
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    port = _free_port()
    key = "sk-mmpc-" + secrets.token_hex(12)
    bench = yaml.safe_load((ROOT / "apps" / "configs" / "bench" / "tiny.yaml").read_text())
    command = [exe, "serve", str(smol), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
    generator = {
        "class_path": SERVED,
        "init_args": {
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model": str(smol),
            "api_key_env": "MMPC_E2E_KEY",
            "max_tokens": 24,
            "max_concurrency": 4,
            "launch": {
                "command": command,
                "env": {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                "startup_timeout_s": 600,
                "log": str(tmp_path / "server.log"),
            },
        },
    }
    renderer = {"class_path": "mmpc.completion.backends.RetrievalRenderer"}
    renderer["init_args"] = {"exclude": "sample"}
    price = {"prompt": 0.5, "completion": 2.0}
    completer = {"name": "served-smollm2", "tasks": ["t2i"], "generator": generator}
    completer.update(renderer=renderer, on_parse_failure="title", batch_size=8)
    completer["price_per_million_tokens"] = price
    bench.update(name="served", runs_dir=str(tmp_path / "runs"), grpo=[], completers=[completer])
    bench["features"]["imputation"] = ["mean"]
    config = tmp_path / "served.yaml"
    config.write_text(yaml.safe_dump(bench))
    log = tmp_path / "bench.log"
    with log.open("w") as sink:
        proc = subprocess.run(
            _isolated([sys.executable, "-m", "mmpc.apps.cli", "bench", f"--config={config}"]),
            env={**os.environ, "MMPC_E2E_KEY": key, "HF_HUB_OFFLINE": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=1500,
        )
    output = log.read_text()
    assert proc.returncode == 0, output[-4000:]
    run = tmp_path / "runs" / "served"
    status = json.loads((run / "status.json").read_text())
    assert status["complete/served-smollm2/t2i"]["status"] == "ran", status
    report = run / "report"
    served = pd.read_csv(report / "served.csv", index_col=0)
    assert served["completer"].tolist() == ["served-smollm2"]
    row = served.iloc[0]
    records_path = run / "complete" / "served-smollm2" / "t2i" / "completion"
    records = [
        json.loads(line)
        for line in (records_path / "served-smollm2" / "t2i" / "records.jsonl")
        .read_text()
        .splitlines()
    ]
    assert row["items"] == len(records) == 30
    assert row["requests"] == 30 + row["retries"]
    usage = [r["served"]["usage"] for r in records]
    assert row["prompt_tokens"] == sum(u["prompt_tokens"] for u in usage) > 0
    assert row["completion_tokens"] == sum(u["completion_tokens"] for u in usage) > 0
    expect = (row["prompt_tokens"] * 0.5 + row["completion_tokens"] * 2.0) / 1e6
    assert row["cost_usd"] == pytest.approx(expect)
    counts = pd.read_csv(report / "counts.csv", index_col=0).set_index("completer")
    parse = sum(1 for r in records if r["output"] is None)
    assert counts.loc["served-smollm2", "parse_failures"] == parse
    html = (report / "report.html").read_text()
    assert "Served completers" in html and "served-smollm2" in html
    # The launched server was stopped at the stage's end: no process serves that port.
    needle = f"--port\0{port}\0".encode()
    left = [p for p in Path("/proc").glob("[0-9]*") if needle in _cmdline(p)]
    assert not left, left
    # The key is nowhere in the run folder or the console; its variable's NAME may be.
    assert key not in output
    bench_config = (run / "bench_config.json").read_text()
    assert "MMPC_E2E_KEY" in bench_config and key not in bench_config
    for path in run.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
