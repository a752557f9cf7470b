"""One voice for every `mmpc` command: each bad input ends with one stderr line naming the path or
key, exit code 2 (input) or 3 (missing weights), no traceback, and nothing written into the
refused run's output folder. Also: `MMPC_DEBUG=1`, torch-free `--help` / `--version`, the quiet
console of `mmpc recsys fit` (and `--verbose`), and logs under `--trainer.default_root_dir`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests._fixtures.mmrec import make_mmrec_folder

from mmpc.apps import cli
from mmpc.completion.catalog import synthesize

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "apps" / "configs"
VBPR = CONFIGS / "recsys" / "vbpr.yaml"
RETRIEVAL = CONFIGS / "completion" / "retrieval-baseline_i2t.yaml"
QWEN = CONFIGS / "completion" / "qwen2.5-vl-7b_i2t.yaml"
GRPO_DEMO = CONFIGS / "grpo" / "demo_t2i.yaml"
GRPO_DEMO_I2T = CONFIGS / "grpo" / "demo_i2t.yaml"
GRPO_PAPER = CONFIGS / "grpo" / "paper_t2i.yaml"
TINY_BENCH = CONFIGS / "bench" / "tiny.yaml"
SERVED_I2T = CONFIGS / "completion" / "served-qwen2.5-vl-7b_i2t.yaml"
UNSET_KEY = "MMPC_MATRIX_UNSET_KEY"  # never set: the missing key variable


@dataclass(frozen=True)
class Inputs:
    """Every kind of input the matrix points the commands at."""

    tmp: Path
    catalog: Path  # the tiny synthetic catalogue
    mmrec: Path  # a tiny MMRec folder with features
    file: Path  # a plain file
    empty: Path  # an empty folder: not a catalogue, MMRec or run folder
    bad_yaml: Path
    corrupt_npy: Path  # an MMRec folder whose text_feat.npy is garbage
    corrupt_manifest: Path  # a folder whose manifest.json is not JSON
    run: Path  # a minimal run folder of mmpc bench
    dead_url: str  # an OpenAI-compatible base URL where nothing listens
    served_bench: Path  # the tiny bench with a served completer at dead_url
    served_bench_no_key: Path  # ... whose key variable is not set


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    tmp = tmp_path_factory.mktemp("inputs")
    mmrec = make_mmrec_folder(tmp / "mmrec", users=40, items=30, per_user=6)
    corrupt = tmp / "corrupt_npy"
    corrupt.mkdir()
    (corrupt / "tiny.inter").write_bytes((mmrec / "tiny.inter").read_bytes())
    (corrupt / "text_feat.npy").write_bytes(b"\x93NUMPY garbage, not an array")
    manifest = tmp / "corrupt_manifest"
    manifest.mkdir()
    (manifest / "manifest.json").write_text("{not json")
    run = tmp / "run"
    run.mkdir()
    (run / "status.json").write_text("{}")
    (tmp / "empty").mkdir()
    (tmp / "a_file.txt").write_text("not a folder")
    (tmp / "bad.yaml").write_text("trainer: [unclosed\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound and released: nothing listens there
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    bench = yaml.safe_load(TINY_BENCH.read_text())
    served = {"class_path": "mmpc.completion.backends.OpenAIChatBackend"}
    served["init_args"] = {"base_url": dead_url, "model": "m", "max_tokens": 8}
    bench.update(grpo=[], completers=[{"name": "api", "tasks": ["i2t"], "generator": served}])
    (tmp / "served_bench.yaml").write_text(yaml.safe_dump(bench))
    served["init_args"] = {**served["init_args"], "api_key_env": UNSET_KEY}
    (tmp / "served_bench_no_key.yaml").write_text(yaml.safe_dump(bench))
    return Inputs(
        tmp=tmp,
        catalog=synthesize("tiny", seed=0, out=tmp / "catalog").root,
        mmrec=mmrec,
        file=tmp / "a_file.txt",
        empty=tmp / "empty",
        bad_yaml=tmp / "bad.yaml",
        corrupt_npy=corrupt,
        corrupt_manifest=manifest,
        run=run,
        dead_url=dead_url,
        served_bench=tmp / "served_bench.yaml",
        served_bench_no_key=tmp / "served_bench_no_key.yaml",
    )


# (case id, exit code, argv builder (inputs, output folder), text the last line must contain)
Case = tuple[str, int, Callable[[Inputs, Path], list[str]], Callable[[Inputs, Path], str]]


def _recsys(i: Inputs, out: Path, *extra: str) -> list[str]:
    return ["recsys", "fit", f"--config={VBPR}", f"--trainer.default_root_dir={out}", *extra]


def _complete(i: Inputs, out: Path, *extra: str) -> list[str]:
    return ["complete", "predict", f"--config={RETRIEVAL}", f"--writer.run_dir={out}", *extra]


def _grpo(i: Inputs, out: Path, *extra: str, config: Path = GRPO_DEMO) -> list[str]:
    return ["grpo", "fit", f"--config={config}", f"--trainer.default_root_dir={out}", *extra]


def _bench(i: Inputs, out: Path, *extra: str) -> list[str]:
    return ["bench", f"--config={TINY_BENCH}", f"--runs_dir={out}", *extra]


CASES: list[Case] = [
    # mmpc recsys
    ("recsys-missing-root", 2, lambda i, o: _recsys(i, o, f"--data.root={i.tmp / 'nope'}"),
     lambda i, o: str(i.tmp / "nope")),
    ("recsys-root-is-file", 2, lambda i, o: _recsys(i, o, f"--data.root={i.file}"),
     lambda i, o: str(i.file)),
    ("recsys-not-mmrec", 2, lambda i, o: _recsys(i, o, f"--data.root={i.empty}"),
     lambda i, o: str(i.empty)),
    ("recsys-unknown-key", 2, lambda i, o: _recsys(i, o, f"--data.root={i.mmrec}", "--data.nope=1"),
     lambda i, o: "--data.nope"),
    ("recsys-bad-value", 2,
     lambda i, o: _recsys(i, o, f"--data.root={i.mmrec}", "--data.batch_size=many"),
     lambda i, o: "--data.batch_size"),
    ("recsys-malformed-config", 2, lambda i, o: _recsys(i, o, f"--config={i.bad_yaml}"),
     lambda i, o: "--config"),
    ("recsys-missing-config", 2, lambda i, o: _recsys(i, o, f"--config={i.tmp / 'no.yaml'}"),
     lambda i, o: str(i.tmp / "no.yaml")),
    ("recsys-corrupt-features", 2, lambda i, o: _recsys(i, o, f"--data.root={i.corrupt_npy}"),
     lambda i, o: str(i.corrupt_npy / "text_feat.npy")),
    ("recsys-out-below-file", 2,
     lambda i, o: _recsys(i, i.file / "sub", f"--data.root={i.mmrec}"),
     lambda i, o: str(i.file / "sub")),
    ("recsys-summarize-missing", 2, lambda i, o: ["recsys", "summarize", str(i.tmp / "nope")],
     lambda i, o: str(i.tmp / "nope")),
    # mmpc complete
    ("complete-missing-catalog", 2,
     lambda i, o: _complete(i, o, f"--data.catalog={i.tmp / 'nope'}"),
     lambda i, o: str(i.tmp / "nope")),
    ("complete-catalog-is-file", 2, lambda i, o: _complete(i, o, f"--data.catalog={i.file}"),
     lambda i, o: str(i.file)),
    ("complete-not-catalog", 2, lambda i, o: _complete(i, o, f"--data.catalog={i.empty}"),
     lambda i, o: str(i.empty)),
    ("complete-unknown-key", 2,
     lambda i, o: _complete(i, o, f"--data.catalog={i.catalog}", "--model.nope=1"),
     lambda i, o: "--model.nope"),
    ("complete-bad-value", 2,
     lambda i, o: _complete(i, o, f"--data.catalog={i.catalog}", "--data.limit=some"),
     lambda i, o: "--data.limit"),
    ("complete-malformed-config", 2, lambda i, o: _complete(i, o, f"--config={i.bad_yaml}"),
     lambda i, o: "--config"),
    ("complete-missing-weights", 3,
     lambda i, o: _complete(
         i, o, f"--config={QWEN}", f"--data.catalog={i.catalog}", "--data.limit=1",
         "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false"),
     lambda i, o: "--model.generator.init_args.model"),
    ("complete-served-unreachable", 3,
     lambda i, o: _complete(
         i, o, f"--config={SERVED_I2T}", f"--data.catalog={i.catalog}", "--data.limit=1",
         "--trainer.enable_progress_bar=false",
         f"--model.generator.init_args.base_url={i.dead_url}"),
     lambda i, o: f"cannot reach the endpoint {i.dead_url}"),
    ("complete-served-missing-key", 2,
     lambda i, o: _complete(
         i, o, f"--config={SERVED_I2T}", f"--data.catalog={i.catalog}", "--data.limit=1",
         "--trainer.enable_progress_bar=false",
         f"--model.generator.init_args.api_key_env={UNSET_KEY}"),
     lambda i, o: f"${UNSET_KEY} is not set"),
    ("complete-out-below-file", 2,
     lambda i, o: _complete(i, i.file / "run", f"--data.catalog={i.catalog}"),
     lambda i, o: str(i.file / "run")),
    # mmpc grpo
    ("grpo-catalog-is-file", 2, lambda i, o: _grpo(i, o, f"--data.catalog={i.file}"),
     lambda i, o: str(i.file)),
    ("grpo-not-catalog", 2, lambda i, o: _grpo(i, o, f"--data.catalog={i.empty}"),
     lambda i, o: str(i.empty)),
    ("grpo-unknown-key", 2,
     lambda i, o: _grpo(i, o, f"--data.catalog={i.catalog}", "--model.nope=1"),
     lambda i, o: "--model.nope"),
    ("grpo-bad-value", 2,
     lambda i, o: _grpo(i, o, f"--data.catalog={i.catalog}", "--model.lora_r=wide"),
     lambda i, o: "--model.lora_r"),
    ("grpo-value-the-module-rejects", 2,
     lambda i, o: _grpo(i, o, f"--data.catalog={i.catalog}", "--model.group_size=0",
                        config=GRPO_DEMO_I2T),
     lambda i, o: "group_size must be >= 2 (advantages are relative), got 0 (--model.group_size)"),
    ("grpo-malformed-config", 2, lambda i, o: _grpo(i, o, config=i.bad_yaml),
     lambda i, o: "--config"),
    ("grpo-missing-weights", 3,
     lambda i, o: _grpo(i, o, f"--data.catalog={i.catalog}", "--trainer.accelerator=cpu",
                        config=GRPO_PAPER),
     lambda i, o: "Qwen/Qwen2.5-VL-7B-Instruct"),
    ("grpo-out-below-file", 2,
     lambda i, o: _grpo(i, i.file / "logs", f"--data.catalog={i.catalog}"),
     lambda i, o: str(i.file / "logs")),
    # mmpc data
    ("data-info-missing", 2, lambda i, o: ["data", "info", str(i.tmp / "nope")],
     lambda i, o: str(i.tmp / "nope")),
    ("data-info-file", 2, lambda i, o: ["data", "info", str(i.file)], lambda i, o: str(i.file)),
    ("data-info-not-catalog", 2, lambda i, o: ["data", "info", str(i.empty)],
     lambda i, o: str(i.empty)),
    ("data-info-corrupt-manifest", 2, lambda i, o: ["data", "info", str(i.corrupt_manifest)],
     lambda i, o: str(i.corrupt_manifest / "manifest.json")),
    ("data-synth-bad-value", 2,
     lambda i, o: ["data", "synth", "--preset", "huge", "--out", str(o)],
     lambda i, o: "--preset"),
    ("data-synth-unknown-option", 2,
     lambda i, o: ["data", "synth", "--colour", "red", "--out", str(o)],
     lambda i, o: "--colour"),
    ("data-synth-out-below-file", 2,
     lambda i, o: ["data", "synth", "--preset", "tiny", "--out", str(i.file / "cat")],
     lambda i, o: str(i.file / "cat")),
    ("data-export-not-catalog", 2,
     lambda i, o: ["data", "export-mmrec", "--catalog", str(i.empty), "--out", str(o)],
     lambda i, o: str(i.empty)),
    ("data-export-out-below-file", 2,
     lambda i, o: ["data", "export-mmrec", "--catalog", str(i.catalog), "--out",
                   str(i.file / "mmrec")],
     lambda i, o: str(i.file / "mmrec")),
    # mmpc bench
    ("bench-unknown-key", 2, lambda i, o: _bench(i, o, "--recbench.nope=1"),
     lambda i, o: "--recbench.nope"),
    ("bench-bad-value", 2, lambda i, o: _bench(i, o, "--recbench.seeds=first"),
     lambda i, o: "--recbench.seeds"),
    ("bench-out-of-range-value", 2, lambda i, o: _bench(i, o, "--features.image_size=4"),
     lambda i, o: "features.image_size"),
    ("bench-no-seeds", 2, lambda i, o: _bench(i, o, "--recbench.seeds=[]", "--dry-run"),
     lambda i, o: "needs at least one seed, got [] (recbench.seeds)"),
    ("bench-malformed-config", 2,
     lambda i, o: ["bench", f"--config={i.bad_yaml}", f"--runs_dir={o}"],
     lambda i, o: "--config"),
    ("bench-missing-config", 2,
     lambda i, o: ["bench", f"--config={i.tmp / 'no.yaml'}", f"--runs_dir={o}"],
     lambda i, o: str(i.tmp / "no.yaml")),
    ("bench-missing-catalog", 2, lambda i, o: _bench(i, o, f"--catalog.path={i.tmp / 'nope'}"),
     lambda i, o: str(i.tmp / "nope")),
    ("bench-not-catalog", 2, lambda i, o: _bench(i, o, f"--catalog.path={i.empty}"),
     lambda i, o: str(i.empty)),
    ("bench-served-unreachable", 3,
     lambda i, o: ["bench", f"--config={i.served_bench}", f"--runs_dir={o}", "--quiet"],
     lambda i, o: f"cannot reach the endpoint {i.dead_url}"),
    ("bench-served-missing-key", 2,
     lambda i, o: ["bench", f"--config={i.served_bench_no_key}", f"--runs_dir={o}", "--quiet"],
     lambda i, o: f"${UNSET_KEY} is not set (or empty); export it, or set api_key_env: null"),
    ("bench-runs-below-file", 2, lambda i, o: _bench(i, i.file / "runs"),
     lambda i, o: str(i.file / "runs")),
    ("bench-verify-only-no-run", 2, lambda i, o: _bench(i, o, "--verify-only"),
     lambda i, o: str(o / "tiny")),
    # mmpc report
    ("report-missing-run", 2, lambda i, o: ["report", str(i.tmp / "nope"), "--out", str(o)],
     lambda i, o: str(i.tmp / "nope")),
    ("report-run-is-file", 2, lambda i, o: ["report", str(i.file), "--out", str(o)],
     lambda i, o: str(i.file)),
    ("report-not-run", 2, lambda i, o: ["report", str(i.empty), "--out", str(o)],
     lambda i, o: str(i.empty)),
    ("report-missing-grpo-log", 2,
     lambda i, o: ["report", str(i.run), "--grpo-log", str(i.tmp / "no.csv"), "--out", str(o)],
     lambda i, o: str(i.tmp / "no.csv")),
    ("report-unknown-option", 2, lambda i, o: ["report", str(i.run), "--colour", "red"],
     lambda i, o: "--colour"),
    ("report-out-below-file", 2, lambda i, o: ["report", str(i.run), "--out", str(i.file / "r")],
     lambda i, o: str(i.file / "r")),
]  # fmt: skip


def test_every_command_is_in_the_matrix() -> None:
    assert {case[0].split("-")[0] for case in CASES} == set(cli.COMMANDS)


@pytest.mark.parametrize(("name", "code", "argv", "named"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(
    name: str,
    code: int,
    argv: Callable[[Inputs, Path], list[str]],
    named: Callable[[Inputs, Path], str],
    inputs: Inputs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # a config's relative default folders land here, if anywhere
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMPC_DEBUG", raising=False)
    if code == 3:  # the hub library reads the variable at import: no network waits
        import huggingface_hub.constants

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "out"
    assert cli.main(argv(inputs, out)) == code
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mmpc {name.split('-')[0]}"), err
    assert named(inputs, out) in last, err
    assert "Traceback" not in err
    assert not out.exists(), sorted(str(p) for p in out.rglob("*"))
    assert list(tmp_path.iterdir()) == []  # nor anything in the working folder


def test_debug_shows_the_traceback_with_the_same_code(
    inputs: Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MMPC_DEBUG", "1")
    assert cli.main(["data", "info", str(inputs.empty)]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "InputError" in err
    assert err.strip().splitlines()[-1].startswith("mmpc data info: ")


def test_a_bug_keeps_its_traceback(inputs: Inputs, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmpc.apps.cli import data as data_cli

    def broken(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(data_cli, "_run", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["data", "info", str(inputs.catalog)])


HELP_PROBE = """
import json, sys
from mmpc.apps.cli import COMMANDS, main
codes = {"--version": main(["--version"]), "--help": main(["--help"])}
for name in COMMANDS:
    codes[name] = main([name, "--help"])
print(json.dumps({"codes": codes, "torch": "torch" in sys.modules,
                  "lightning": "lightning" in sys.modules}))
"""


def test_help_and_version_do_not_import_torch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["codes"] == {k: 0 for k in ["--version", "--help", *cli.COMMANDS]}
    assert result == {"codes": result["codes"], "torch": False, "lightning": False}
    assert "mmpc 0.1.0" in proc.stdout and "--help-all" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "seen"),
    [
        (["--verbose", "fake", "a"], ("1", ["a"])),
        (["fake", "a", "--verbose"], ("1", ["a"])),
        (["fake", "a", "--", "--verbose"], (None, ["a", "--", "--verbose"])),
        (["fake", "a"], (None, ["a"])),
    ],
)
def test_verbose_before_or_after_the_command(
    argv: list[str], seen: tuple[str | None, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from mmpc.apps.console import VERBOSE_ENV

    calls = []
    fake = types.ModuleType("mmpc_fake_cli")
    fake.main = lambda rest: calls.append((os.environ.get(VERBOSE_ENV), rest)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mmpc_fake_cli", fake)
    monkeypatch.setitem(cli.COMMANDS, "fake", cli.Command("mmpc_fake_cli", "test"))
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    assert cli.main(argv) == 0
    assert calls == [seen]
    assert VERBOSE_ENV not in os.environ  # restored after the command


def test_quiet_block_hides_transformers_loading_bar() -> None:
    from transformers.utils import logging as hf_logging

    from mmpc.apps.console import quiet_libraries

    assert hf_logging.is_progress_bar_enabled()
    with quiet_libraries(loud=False):
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    with quiet_libraries(loud=True):
        assert hf_logging.is_progress_bar_enabled()


CHATTER = (
    "GPU available",
    "TPU available",
    "litlogger",
    "litmodels",
    "💡",
    "Seed set to",
    "log_every_n_steps",
    "IterableDataset",
    "does not have many workers",
    "LeafSpec",
)

FIT_TWICE = """
import sys
from mmpc.apps.cli import main
root, args = sys.argv[1], sys.argv[2:]
quiet = main(["recsys", "fit", *args, f"--trainer.default_root_dir={root}/quiet"])
print("=====verbose=====", file=sys.stderr, flush=True)
loud = main(["recsys", "fit", "--verbose", *args, f"--trainer.default_root_dir={root}/loud"])
print(quiet, loud)
"""


@pytest.mark.slow
def test_recsys_fit_is_quiet_and_logs_under_default_root_dir(
    inputs: Inputs, tmp_path: Path
) -> None:
    args = [
        f"--config={VBPR}", f"--data.root={inputs.mmrec}", "--data.batch_size=64",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
        "--model.model.init_args.embedding_dim=8",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", FIT_TWICE, str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 0", proc.stderr[-3000:]
    quiet, loud = proc.stderr.split("=====verbose=====")
    for text in CHATTER:
        assert text not in quiet, quiet
    assert f"mmpc recsys fit: cpu (1 device); logs in {tmp_path / 'quiet'}" in quiet
    assert "GPU available" in loud and "IterableDataset" in loud  # --verbose brings it back
    for run in ("quiet", "loud"):
        (metrics,) = (tmp_path / run).rglob("metrics.json")
        assert (metrics.parent / "config.yaml").is_file()
        assert json.loads(metrics.read_text())["epochs_run"] == 1
    assert not (tmp_path / "runs").exists()  # the config's save_dir (runs/recsys) was re-rooted
