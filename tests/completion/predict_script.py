"""A completion run through the package API only, for the multi-process tests.

``python predict_script.py --catalog C --model M --run-dir R [--limit N] [--batch-size B]
[--devices D] [--generation JSON]``: ``MLLMBackend`` (tiny Qwen2.5-VL, float32, no quantisation)
completing the CQBench sample's i2t titles with ``CompletionWriter``. It is a script, not a test,
because Lightning's DDP launcher starts the other ranks by re-running ``sys.argv``.
"""

from __future__ import annotations

import argparse
import json

import lightning as L

from mmpc.completion import CompletionDataModule, CompletionModule, CompletionWriter
from mmpc.completion.backends.mllm import MLLMBackend


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--generation", default='{"max_new_tokens": 4}')
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)
    generator = MLLMBackend(
        args.model,
        quantization="none",
        compute_dtype="float32",
        generation=json.loads(args.generation),
    )
    module = CompletionModule("qwen2.5-vl-7b", generator, task="i2t", seed=0)
    data = CompletionDataModule(
        args.catalog, task="i2t", limit=args.limit, batch_size=args.batch_size, num_workers=0
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[CompletionWriter(args.run_dir)],
    )
    trainer.predict(module, datamodule=data, return_predictions=False)


if __name__ == "__main__":
    main()
