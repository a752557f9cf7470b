"""The first-step parity of ``benchmarks/grpo/bench_vs_trl.py`` on a tiny random Llama."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_first_step_loss_kl_and_grad_match_trl(
    tiny_llama: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    grpo_benchmark: Callable[[str], ModuleType],
) -> None:
    bench = grpo_benchmark("bench_vs_trl.py")
    args = bench.parse_args(
        [
            *("--model", str(tiny_llama), "--lora-r", "4", "--lora-alpha", "8"),
            *("--max-new-tokens", "6", "--perturb", "0.3"),
        ]
    )
    rows = [{"item_id": f"p{i}", "title": t} for i, t in enumerate(bench.TITLES[: args.prompts])]
    ours = bench.build_ours(args, str(tiny_llama), str(tmp_path / "adapter"))
    prompts = ours.prompts.texts(rows)
    trainer = bench.build_trl(args, str(tiny_llama), prompts, str(tmp_path / "trl"), ours)
    before = {n: p.detach().clone() for n, p in bench.lora_params(ours.policy_model).items()}
    assert bench.parity(args, ours, trainer, rows)
    out = capsys.readouterr().out
    assert "KL (k3, token mean)" in out and "MISMATCH" not in out
    kl = float(out.split("KL (k3, token mean)")[1].split()[1])
    assert kl > 1e-3  # the perturbed adapter makes the KL comparison non-trivial
    # the adapters are restored, identical on both sides
    after_ours = bench.lora_params(ours.policy_model)
    after_trl = bench.lora_params(trainer.model)
    for name, value in before.items():
        assert after_ours[name].equal(value) and after_trl[name].equal(value)
