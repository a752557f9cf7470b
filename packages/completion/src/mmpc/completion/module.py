"""``CompletionModule``: one predict step = complete one batch of items, return plain records.

Record (one per item; docs/CONTRACTS.md)::

    {"item_id", "task": "i2t" | "t2i", "completer", "output", "raw", "error",
     "timings": {"generate_s", "render_s", "batch_size"},
     "served": {"latency_s", "retries", "usage", "finish_reason"}}   # served generators only

``output`` is the parsed value (the title for i2t, the image prompt for t2i) or ``None`` when the
answer could not be parsed; ``error`` then says why (parse failures never stop a run). Timings are
the batch's wall time divided by its size. t2i records carry the rendered image under the private
key ``"_image"``, which :class:`~mmpc.completion.writer.CompletionWriter` pops and saves.

Seeds: render ``i`` uses ``item_seed(seed, item_id)`` (the first 8 bytes of
``sha256(f"{seed}:{item_id}")``), so an image does not depend on its batch. Sampled text
generation (e.g. Qwen's own generation config) is seeded per batch from the batch's ids.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule

from mmpc.completion.backends.base import BackendContext, Generator, Renderer, Request
from mmpc.completion.parsing import parse_answer
from mmpc.completion.prompts import (
    PromptTemplate,
    build_messages,
    build_text_messages,
    default_template,
)

__all__ = ["CompletionModule", "item_seed"]


def item_seed(seed: int, item_id: str) -> int:
    """A stable 63-bit seed for ``item_id``: ``int(sha256(f"{seed}:{item_id}")[:8]) >> 1``."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class CompletionModule(LightningModule):
    """Completes the masked modality of each item with the configured backends.

    Args:
        completer: the completer's name (output folder; e.g. ``qwen2.5-vl-7b``).
        task: ``"i2t"`` (generator writes titles) or ``"t2i"`` (generator writes image prompts,
            renderer draws them).
        generator: the backend that writes answers.
        renderer: the t2i image backend (required for t2i, not allowed for i2t).
        prompt: the prompt template (default: the packaged one for ``task``).
        seed: base seed for per-item render seeds and per-batch sampling seeds.
        on_parse_failure: t2i only: ``"skip"`` renders nothing for an unparsable prompt;
            ``"title"`` renders the product title instead (the record keeps the error).
    """

    def __init__(
        self,
        completer: str,
        generator: Generator,
        task: Literal["i2t", "t2i"] = "i2t",
        renderer: Renderer | None = None,
        prompt: PromptTemplate | None = None,
        seed: int = 0,
        on_parse_failure: Literal["skip", "title"] = "skip",
    ) -> None:
        super().__init__()
        if task not in ("i2t", "t2i"):
            raise ValueError(f"unknown task {task!r}: expected 'i2t' or 't2i'")
        if task == "t2i" and renderer is None:
            raise ValueError("task t2i needs a renderer (model.renderer)")
        if task == "i2t" and renderer is not None:
            raise ValueError("task i2t takes no renderer (model.renderer must be null)")
        self.completer, self.task, self.seed = completer, task, seed
        self.generator, self.renderer = generator, renderer
        self.prompt = prompt if prompt is not None else default_template(task)
        if self.prompt.needs_title != (task == "t2i"):
            raise ValueError(
                f"prompt for {task} must {'' if task == 't2i' else 'not '}contain {{title}}"
            )
        self.on_parse_failure = on_parse_failure
        self._ready = False

    def fingerprint(self) -> dict[str, Any]:
        """What determines this completer's outputs (stored with them, compared on resume)."""
        return {
            "completer": self.completer,
            "task": self.task,
            "seed": self.seed,
            "prompt": vars(self.prompt),
            "generator": self.generator.describe(),
            "renderer": self.renderer.describe() if self.renderer is not None else None,
            "on_parse_failure": self.on_parse_failure,
        }

    def _context(self, key: str) -> BackendContext:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        return BackendContext(
            device=self.device,
            catalog=getattr(datamodule, "catalog", None),
            sample_ids=frozenset(getattr(datamodule, "sample_ids", [])),
            config_key=key,
        )

    def setup_backends(self) -> None:
        """Load the backends on this module's device (once)."""
        if self._ready:
            return
        self.generator.setup(self._context("model.generator"))
        if self.renderer is not None:
            self.renderer.setup(self._context("model.renderer"))
        self._ready = True

    def on_predict_start(self) -> None:
        self.setup_backends()

    def teardown(self, stage: str) -> None:
        """Release the backends' clients and launched servers (a served generator's)."""
        if self._ready:
            self.generator.teardown()
            self._ready = False

    def _requests(self, batch: dict[str, list[Any]]) -> list[Request]:
        ids = batch["item_id"]
        images = batch.get("image", [None] * len(ids))
        titles = batch.get("title", [None] * len(ids))
        fmt = self.generator.input_format
        out = []
        for item_id, image, title in zip(ids, images, titles, strict=True):
            if fmt == "chat":
                messages = build_messages(self.prompt, image=image, title=title)
            elif fmt == "text_chat":
                if image is not None:
                    raise ValueError(f"{type(self.generator).__name__} is text-only: cannot do i2t")
                messages = build_text_messages(self.prompt, title=title)
            else:
                messages = None
            out.append(Request(item_id=item_id, messages=messages, image=image, title=title))
        return out

    def _parse(self, raw: str) -> tuple[str | None, str | None]:
        if self.generator.answers_json:
            result = parse_answer(raw, self.prompt.key)
            return result.value, result.error
        value = raw.strip()
        return (value, None) if value else (None, "empty answer")

    def predict_step(self, batch: dict[str, list[Any]], batch_idx: int = 0) -> list[dict[str, Any]]:
        """Complete one batch; returns one record per item (see the module docstring)."""
        self.setup_backends()
        ids: list[str] = list(batch["item_id"])
        n = len(ids)
        torch.manual_seed(item_seed(self.seed, "|".join(ids)))
        start = time.perf_counter()
        raws = self.generator.generate(self._requests(batch))
        generate_s = time.perf_counter() - start
        if len(raws) != n:
            raise RuntimeError(
                f"{type(self.generator).__name__} returned {len(raws)} answers for {n}"
            )
        parsed = [self._parse(raw) for raw in raws]
        details = self.generator.item_details()
        records = [
            {
                "item_id": item_id,
                "task": self.task,
                "completer": self.completer,
                "output": value,
                "raw": raw,
                "error": error,
                "timings": {"generate_s": generate_s / n, "render_s": 0.0, "batch_size": n},
            }
            for item_id, raw, (value, error) in zip(ids, raws, parsed, strict=True)
        ]
        if details is not None:
            for record, detail in zip(records, details, strict=True):
                detail = dict(detail)
                failure = detail.pop("error", None)
                if failure is not None:  # e.g. an answer that is not text: a parse failure
                    record["output"], record["error"] = None, failure
                record["served"] = detail
        if self.task == "t2i":
            self._render(records, batch.get("title", [None] * n))
        return records

    def _render(self, records: list[dict[str, Any]], titles: list[str | None]) -> None:
        todo: list[tuple[dict[str, Any], str]] = []
        for record, title in zip(records, titles, strict=True):
            if record["output"] is not None:
                todo.append((record, record["output"]))
            elif self.on_parse_failure == "title" and title:
                record["error"] = f"{record['error']}; rendered from the title instead"
                todo.append((record, title))
        if not todo:
            return
        start = time.perf_counter()
        images = self.renderer.render(
            [prompt for _, prompt in todo],
            item_ids=[r["item_id"] for r, _ in todo],
            seeds=[item_seed(self.seed, r["item_id"]) for r, _ in todo],
        )
        render_s = (time.perf_counter() - start) / len(todo)
        if len(images) != len(todo):
            raise RuntimeError(
                f"{type(self.renderer).__name__} returned {len(images)} images for {len(todo)}"
            )
        for (record, _), image in zip(todo, images, strict=True):
            record["_image"] = image
            record["timings"]["render_s"] = render_s
