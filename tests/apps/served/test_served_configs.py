"""The served completion YAMLs through the real CLI entry point, without a server: each one
builds its backend and refuses an endpoint where nothing listens (exit 3, URL named, nothing
written). The running-server paths are checked in test_served.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mmpc.apps import cli
from mmpc.completion.catalog import Catalog

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[3] / "apps" / "configs" / "completion"
SERVED = sorted(CONFIGS.glob("served-*.yaml"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_there_are_served_configs_for_both_tasks() -> None:
    assert {p.stem.rsplit("_", 1)[-1] for p in SERVED} == {"i2t", "t2i"}


@pytest.mark.parametrize("config", SERVED, ids=[p.stem for p in SERVED])
def test_served_config_refuses_an_unreachable_endpoint(
    config: Path, tiny_catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # bound and released: nothing listens there
    args = [
        "complete",
        "predict",
        "--config",
        str(config),
        f"--data.catalog={tiny_catalog.root}",
        "--data.limit=1",
        f"--writer.run_dir={tmp_path / 'run'}",
        "--trainer.enable_progress_bar=false",
        f"--model.generator.init_args.base_url={url}",
    ]
    assert cli.main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mmpc complete: cannot reach the endpoint " + url)
    assert not (tmp_path / "run" / "completion").exists()
