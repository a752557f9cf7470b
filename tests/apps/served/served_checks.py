"""Everything the served-backend tests check, in one process inside a private network namespace.

Run as ``python served_checks.py OUT`` under ``unshare -n`` (loopback only; see conftest.py) with
the API key in ``$MMPC_SERVED_KEY``. It starts two real ``transformers serve`` servers (SmolLM2 for
T→I, the tiny random Qwen2.5-VL for I→T) with the backend's own ``launch`` code, and writes
``OUT/summary.json`` with what the tests assert:

* parity: greedy answers of the in-process backends vs the same requests through the servers;
* CLI runs (``mmpc complete predict`` on ``served-qwen2.5-vl-7b_i2t.yaml``): an uninterrupted
  run; a run through the fault proxy (429 + Retry-After, 503, dropped connection, slow answer);
  a run whose server is killed mid-run; its rerun after a restart; an answer that is not text;
* the error matrix: unreachable endpoint, unknown model, missing key variable.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from fault_proxy import FaultProxy

from mmpc.apps import cli
from mmpc.completion.backends.base import BackendContext, Request
from mmpc.completion.backends.mllm import MLLMBackend
from mmpc.completion.backends.served import OpenAIChatBackend
from mmpc.completion.backends.served_launch import Launch, ServerProcess
from mmpc.completion.backends.textllm import TextLLMBackend, convert_gguf, smollm2_gguf
from mmpc.completion.catalog import Catalog, synthesize
from mmpc.completion.prompts import build_messages, build_text_messages, default_template
from mmpc.completion.tiny import save_tiny_qwen2_5_vl

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "apps" / "configs" / "completion" / "served-qwen2.5-vl-7b_i2t.yaml"
KEY_ENV = "MMPC_SERVED_KEY"
SMOL_PORT, QWEN_PORT, DEAD_PORT = 18101, 18102, 18109
N_ITEMS, T2I_TOKENS, I2T_TOKENS = 20, 20, 16
CPU = BackendContext(device=torch.device("cpu"))


def serve(model: Path, port: int, log: Path) -> ServerProcess:
    """A ``transformers serve`` pinned to ``model`` on 127.0.0.1:``port`` (not yet ready)."""
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    command = [exe, "serve", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
    # One thread: on a shared 2-core box two spinning OpenMP threads per server crawl.
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launch = Launch(command=command, env=env, log=str(log))
    return ServerProcess(launch, f"http://127.0.0.1:{port}/v1")


def parity(catalog: Catalog, smol: Path, qwen: Path) -> dict[str, Any]:
    """Greedy answers in-process vs served, same requests, both tasks."""
    ids = catalog.sample("cqbench")[:N_ITEMS]
    t2i, i2t = default_template("t2i"), default_template("i2t")
    titles = {i: str(catalog.items.at[i, "title"]) for i in ids}
    images = {i: catalog.load_image(i) for i in ids}
    out: dict[str, Any] = {}
    cases = {
        "t2i": (
            TextLLMBackend(
                model=str(smol), generation={"max_new_tokens": T2I_TOKENS, "do_sample": False}
            ),
            [Request(i, messages=build_text_messages(t2i, title=titles[i])) for i in ids],
            SMOL_PORT,
            smol,
            T2I_TOKENS,
            [Request(i, messages=build_messages(t2i, title=titles[i])) for i in ids],
        ),
        "i2t": (
            MLLMBackend(
                model=str(qwen),
                quantization="none",
                compute_dtype="float32",
                generation={"max_new_tokens": I2T_TOKENS, "do_sample": False},
            ),
            [Request(i, messages=build_messages(i2t, image=images[i])) for i in ids],
            QWEN_PORT,
            qwen,
            I2T_TOKENS,
            [Request(i, messages=build_messages(i2t, image=images[i])) for i in ids],
        ),
    }
    for task, (local, local_requests, port, model, tokens, served_requests) in cases.items():
        local.setup(CPU)
        start = time.perf_counter()
        local_answers = local.generate(local_requests)
        local_s = time.perf_counter() - start
        served = OpenAIChatBackend(
            base_url=f"http://127.0.0.1:{port}/v1",
            model=str(model),
            api_key_env=KEY_ENV,
            max_tokens=tokens,
            max_concurrency=1,
        )
        served.setup(CPU)
        start = time.perf_counter()
        served_answers = served.generate(served_requests)
        served_s = time.perf_counter() - start
        details = served.item_details()
        served.teardown()
        out[task] = {
            "local": local_answers,
            "served": served_answers,
            "local_s": local_s,
            "served_s": served_s,
            "usage": [d["usage"] for d in details],
        }
    return out


def run_cli(args: list[str]) -> tuple[int, str]:
    """``mmpc complete predict`` in this process; returns (exit code, its stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["complete", "predict", *args])
    sys.stderr.write(err.getvalue())
    return code, err.getvalue()


def cli_args(catalog: Catalog, run: Path, base_url: str, model: str, **extra: Any) -> list[str]:
    args = [
        "--config",
        str(CONFIG),
        f"--data.catalog={catalog.root}",
        f"--data.limit={N_ITEMS}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        f"--writer.run_dir={run}",
        "--trainer.enable_progress_bar=false",
        f"--model.generator.init_args.base_url={base_url}",
        f"--model.generator.init_args.model={model}",
        f"--model.generator.init_args.api_key_env={KEY_ENV}",
        f"--model.generator.init_args.max_tokens={I2T_TOKENS}",
        "--model.generator.init_args.timeout_s=2",
        "--model.generator.init_args.retry.max_retries=3",
        "--model.generator.init_args.retry.backoff_s=0.2",
    ]
    return args + [f"--model.generator.init_args.{k}={v}" for k, v in extra.items()]


def records(run: Path) -> list[dict[str, Any]]:
    path = run / "completion" / "served-qwen2.5-vl-7b" / "i2t" / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def part_count(run: Path) -> int:
    parts = run / "completion" / "served-qwen2.5-vl-7b" / "i2t" / "parts"
    return sum(len(p.read_text().splitlines()) for p in parts.glob("*.jsonl"))


def main(out: Path) -> None:
    summary: dict[str, Any] = {"times": {}}
    times = summary["times"]
    clock = time.perf_counter()
    smol = convert_gguf(smollm2_gguf())
    qwen = save_tiny_qwen2_5_vl(out / "qwen")
    catalog = synthesize(preset="tiny", seed=0, out=out / "catalog")
    smol_server = serve(smol, SMOL_PORT, out / "smol.log")
    qwen_server = serve(qwen, QWEN_PORT, out / "qwen.log")
    try:
        smol_server.wait_ready()
        qwen_server.wait_ready()
        times["start_servers"] = time.perf_counter() - clock

        qwen_url = f"http://127.0.0.1:{QWEN_PORT}/v1"
        clock = time.perf_counter()
        code, _ = run_cli(cli_args(catalog, out / "runs" / "reference", qwen_url, str(qwen)))
        summary["reference"] = {"code": code, "records": records(out / "runs" / "reference")}
        times["reference_run"] = time.perf_counter() - clock

        clock = time.perf_counter()
        faults = {1: "429", 3: "503", 5: "drop", 7: "slow"}
        with FaultProxy(QWEN_PORT, faults, slow_s=4.0) as proxy:
            code, _ = run_cli(cli_args(catalog, out / "runs" / "faults", proxy.url, str(qwen)))
        summary["faults"] = {
            "code": code,
            "records": records(out / "runs" / "faults"),
            "injected": dict(proxy.injected),
        }
        times["fault_run"] = time.perf_counter() - clock

        with FaultProxy(QWEN_PORT, {1: "notext"}) as proxy:
            notext = cli_args(catalog, out / "runs" / "notext", proxy.url, str(qwen))
            code, _ = run_cli([*notext, "--data.limit=1"])
        summary["notext"] = {"code": code, "records": records(out / "runs" / "notext")}

        clock = time.perf_counter()
        killed = out / "runs" / "killed"
        # POST 9 is the first request of the third batch of 4.
        with FaultProxy(QWEN_PORT, {9: "kill"}, upstream_pgid=qwen_server.pid) as proxy:
            retries = {"retry.max_retries": 2}
            code, err = run_cli(cli_args(catalog, killed, proxy.url, str(qwen), **retries))
            summary["killed"] = {"code": code, "stderr": err, "url": proxy.url}
        summary["killed"]["records_kept"] = part_count(killed)
        qwen_server.stop()
        times["killed_run"] = time.perf_counter() - clock

        clock = time.perf_counter()
        qwen_server = serve(qwen, QWEN_PORT, out / "qwen-restarted.log")
        qwen_server.wait_ready()
        times["restart_server"] = time.perf_counter() - clock
        clock = time.perf_counter()
        rerun = cli_args(catalog, killed, qwen_url, str(qwen))
        code, _ = run_cli(rerun)
        summary["rerun"] = {"code": code, "records": records(killed)}
        summary["rerun"]["summary"] = json.loads(
            (killed / "completion" / "served-qwen2.5-vl-7b" / "i2t" / "summary.json").read_text()
        )
        times["rerun"] = time.perf_counter() - clock

        errors = {}
        for case, url, model, extra in (
            ("unreachable", f"http://127.0.0.1:{DEAD_PORT}/v1", str(qwen), {}),
            ("unknown_model", qwen_url, "no-such-model", {}),
            ("missing_key", qwen_url, str(qwen), {"api_key_env": "MMPC_UNSET_KEY"}),
        ):
            run = out / "runs" / case
            code, err = run_cli(cli_args(catalog, run, url, model, **extra))
            errors[case] = {"code": code, "stderr": err, "url": url, "wrote": run.exists()}
        summary["errors"] = errors

        clock = time.perf_counter()
        summary["parity"] = parity(catalog, smol, qwen)
        times["parity"] = time.perf_counter() - clock
        summary["expected_ids"] = catalog.sample("cqbench")[:N_ITEMS]
    finally:
        smol_server.stop()
        qwen_server.stop()
        (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
