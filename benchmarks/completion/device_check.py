"""One short GPU check of the completion backends with TINY RANDOM models (no real weights).

Checks, on CUDA:
1. tiny Qwen2.5-VL and Gemma-3 load through ``MLLMBackend`` with bitsandbytes 4-bit NF4 + double
   quantisation (fp16 / bf16 compute), their linear layers are ``Linear4bit`` with a nested
   quant state, and batched greedy generation equals one-at-a-time generation;
2. items/s batched (16) vs one-at-a-time for the fp16 tiny Qwen (target in the issue: >= 4x);
3. a tiny SD3 pipeline in fp16 through ``DiffusionBackend``: per-item seeds give the same image
   in a batch of 2 as alone.

Prints one JSON object; exit code 1 when a check fails. Needs torch, transformers, diffusers,
bitsandbytes, tokenizers, pyyaml and Pillow on the device (no catalogue, no pandas: the covers are
drawn here); run from the repository root:

    PYTHONPATH=packages/metrics/src:packages/completion/src \
        python3 benchmarks/completion/device_check.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def _covers(n: int) -> list[Image.Image]:
    """Simple product-like covers: a coloured box on a light background, varied sizes."""
    rng = np.random.default_rng(0)
    covers = []
    for _ in range(n):
        side = int(rng.choice([48, 64, 80]))
        image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(200, 256, 3)))
        x0, y0 = (int(v) for v in rng.integers(4, side // 3, 2))
        ImageDraw.Draw(image).rectangle(
            [x0, y0, side - x0, side - y0], fill=tuple(int(v) for v in rng.integers(0, 200, 3))
        )
        covers.append(image)
    return covers


def main() -> int:
    import bitsandbytes as bnb

    from mmpc.completion.backends.base import BackendContext, Request
    from mmpc.completion.backends.diffusion import DiffusionBackend
    from mmpc.completion.backends.mllm import MLLMBackend
    from mmpc.completion.prompts import build_messages, default_template
    from mmpc.completion.tiny import save_tiny_gemma3, save_tiny_qwen2_5_vl, save_tiny_sd3

    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    cuda = torch.device("cuda", 0)
    ctx = BackendContext(device=cuda)
    report: dict[str, object] = {"device": torch.cuda.get_device_name(0)}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        template = default_template("i2t")
        requests = []
        for i, image in enumerate(_covers(32)):
            requests.append(Request(f"item{i}", build_messages(template, image=image), image=image))
        greedy = {"max_new_tokens": 16, "do_sample": False}
        for name, build, dtype in (
            ("qwen", save_tiny_qwen2_5_vl, "float16"),
            ("gemma", save_tiny_gemma3, "bfloat16"),
        ):
            backend = MLLMBackend(
                str(build(tmp_path / name)),
                quantization="nf4",
                compute_dtype=dtype,
                generation=greedy,
            )
            backend.setup(ctx)
            layers = [m for m in backend._model.modules() if isinstance(m, bnb.nn.Linear4bit)]
            state = layers[0].weight.quant_state if layers else None
            batched = backend.generate(requests[:8])
            single = [backend.generate([r])[0] for r in requests[:8]]
            check = {
                "linear4bit_layers": len(layers),
                "quant_type": getattr(state, "quant_type", None),
                "double_quant": bool(getattr(state, "nested", False)),
                "compute_dtype": str(layers[0].compute_dtype) if layers else None,
                "batched_equals_single": batched == single,
                "memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            }
            report[f"{name}_nf4"] = check
            ok &= bool(layers) and check["quant_type"] == "nf4" and check["double_quant"]
            del backend
            torch.cuda.empty_cache()
        speed = MLLMBackend(
            str(tmp_path / "qwen"),
            quantization="none",
            compute_dtype="float16",
            generation={"max_new_tokens": 32, "min_new_tokens": 32, "do_sample": False},
        )
        speed.setup(ctx)
        speed.generate(requests[:2])
        rates, outputs = {}, {}
        for batch in (1, 16):
            torch.cuda.synchronize()
            start = time.perf_counter()
            outputs[batch] = [
                a for i in range(0, 32, batch) for a in speed.generate(requests[i : i + batch])
            ]
            torch.cuda.synchronize()
            rates[batch] = 32 / (time.perf_counter() - start)
        report["batching_fp16_qwen"] = {
            "items_per_s_single": round(rates[1], 2),
            "items_per_s_batch16": round(rates[16], 2),
            "speedup": round(rates[16] / rates[1], 2),
            "identical_outputs": outputs[1] == outputs[16],
        }
        renderer = DiffusionBackend(
            str(save_tiny_sd3(tmp_path / "sd3")),
            dtype="float16",
            num_inference_steps=4,
            max_sequence_length=16,
            height=32,
            width=32,
        )
        renderer.setup(BackendContext(device=cuda, config_key="model.renderer"))
        pair = renderer.render(["a red mug", "a blue shoe"], item_ids=["a", "b"], seeds=[1, 2])
        alone = renderer.render(["a blue shoe"], item_ids=["b"], seeds=[2])
        diff = np.abs(np.asarray(pair[1], dtype=int) - np.asarray(alone[0], dtype=int)).max()
        report["sd3_fp16"] = {
            "size": list(pair[0].size),
            "max_pixel_diff_batch_vs_single": int(diff),
        }
        ok &= diff <= 2
    report["ok"] = bool(ok)
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
