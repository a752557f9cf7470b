"""VBPR fit / test through the package API only, for the multi-process test.

``python ddp_script.py fit|test --root R --save-dir S [--devices D] [--ckpt C] [--max-epochs E]``.
It is a script, not a test, because Lightning's DDP launcher starts the other ranks by re-running
``sys.argv``. ``metrics.json`` lands in the CSV logger's folder under ``--save-dir``.
"""

from __future__ import annotations

import argparse

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from mmpc.recsys import VBPR, InteractionDataModule, RecommenderModule


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["fit", "test"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--save-dir", required=True)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--max-epochs", type=int, default=2)
    args = parser.parse_args()
    L.seed_everything(999, verbose=False)
    dm = InteractionDataModule(args.root, batch_size=256, eval_batch_size=4096, seed=999)
    module = RecommenderModule(VBPR(dm.num_users, dm.num_items, dm.feature_dims, embedding_dim=8))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.max_epochs,
        num_sanity_val_steps=0,
        logger=CSVLogger(args.save_dir, name="vbpr"),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if args.command == "fit":
        trainer.fit(module, datamodule=dm)
        trainer.test(module, datamodule=dm, ckpt_path="best")
    else:
        trainer.test(module, datamodule=dm, ckpt_path=args.ckpt)


if __name__ == "__main__":
    main()
