"""Any served model: a :class:`Generator` for OpenAI-compatible Chat Completions endpoints.

vLLM, SGLang, llama.cpp's server, ``transformers serve`` and hosted APIs all speak the same
``POST <base_url>/chat/completions``; this backend sends the messages
:func:`~mmpc.completion.prompts.build_messages` builds, so a served model sees the same turns as the
in-process :class:`~mmpc.completion.backends.mllm.MLLMBackend`:

* a text-only turn (the system turn, a T→I user turn) is sent as a plain string, which every
  server accepts and renders like the in-process text backends' ``build_text_messages``;
* an I→T user turn is a list of parts, the image part first, as an ``image_url`` part holding a
  base64 data URL. The default is a lossless PNG of the cover at its own size, so the server's
  processor resizes exactly the pixels the in-process processor would (Qwen2.5-VL's
  ``smart_resize``, Gemma-3's 896 px); ``max_pixels`` shrinks larger covers first (hosted APIs
  bill by size) and ``image_format: jpeg`` makes requests smaller at the price of parity.

Requests of one batch go out together, at most ``max_concurrency`` at a time (a batching server
needs many in flight; the DataModule's ``batch_size`` should be at least as large). Retries and
errors: :mod:`mmpc.completion.backends.served_client`. Per item the backend reports latency,
retries, the server's token usage and finish reason (:meth:`item_details`, kept under the record's
``"served"`` key), and it keeps run totals (:attr:`totals`).

The API key is read from the environment variable named by ``api_key_env`` when the backend sets
up; it lives only inside the client and is never part of :meth:`describe` (the run's config
fingerprint), a record, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
from typing import TYPE_CHECKING, Any

import openai

from mmpc.completion.backends.base import BackendContext, Generator, Request
from mmpc.completion.backends.served_client import (
    Answer,
    EndpointError,
    RetryPolicy,
    chat_once,
)
from mmpc.completion.backends.served_launch import Launch, ServerProcess
from mmpc.metrics.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OpenAIChatBackend", "encode_image", "to_openai_messages"]

# Settings that change speed, where the endpoint is or how it is reached, never the answers.
_NOT_IDENTITY = ("base_url", "api_key_env", "timeout_s", "max_concurrency", "retry", "launch")
_PLACEHOLDER_KEY = "not-needed"  # the client insists on a key; local servers ignore it


def encode_image(image: Image.Image, *, fmt: str = "png", max_pixels: int | None = None) -> str:
    """A ``data:`` URL of ``image`` (PNG: lossless; JPEG: quality 95, RGB).

    ``max_pixels`` shrinks the image (aspect ratio kept, bicubic) when it has more pixels.
    """
    from PIL import Image as PILImage

    if max_pixels is not None and image.width * image.height > max_pixels:
        scale = (max_pixels / (image.width * image.height)) ** 0.5
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        image = image.resize(size, PILImage.Resampling.BICUBIC)
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG")
    return f"data:image/{fmt};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def to_openai_messages(
    messages: list[dict[str, Any]], *, fmt: str = "png", max_pixels: int | None = None
) -> list[dict[str, Any]]:
    """Hugging Face chat messages (:func:`build_messages`) → Chat Completions messages."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        if all(part["type"] == "text" for part in content):
            text = "".join(part["text"] for part in content)
            out.append({"role": message["role"], "content": text})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            if part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif part["type"] == "image":
                url = encode_image(part["image"], fmt=fmt, max_pixels=max_pixels)
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                raise ValueError(f"unsupported message part type {part['type']!r}")
        out.append({"role": message["role"], "content": parts})
    return out


class OpenAIChatBackend(Generator):
    """A model behind an OpenAI-compatible Chat Completions endpoint (I→T and T→I).

    Args:
        base_url: the endpoint's API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the server knows (vLLM: the served name; ``transformers serve``:
            the path it was started with; a hosted API: its model id).
        api_key_env: the NAME of the environment variable holding the API key (``None``: no key,
            for local servers). The key itself never goes into a config.
        max_tokens: the most answer tokens.
        temperature: 0 for greedy answers (the paper's settings are greedy or the model's own).
        seed: sent with every request (servers that support it sample repeatably).
        extra_body: server-specific request fields passed through (e.g. vLLM's
            ``{top_k: 1, repetition_penalty: 1.0}``).
        timeout_s: one try's time limit.
        max_concurrency: requests in flight at once.
        retry: retries of failed requests (see :class:`RetryPolicy`).
        image_format: ``"png"`` (lossless, parity with in-process) or ``"jpeg"`` (smaller).
        max_pixels: shrink covers with more pixels than this before sending.
        launch: start this server for the run and stop it at the end (else it must be running).
    """

    input_format = "chat"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = 0,
        extra_body: dict[str, Any] | None = None,
        timeout_s: float = 120.0,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        image_format: str = "png",
        max_pixels: int | None = None,
        launch: Launch | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"base_url {base_url!r} is not an http(s) URL", "base_url")
        if max_concurrency < 1:
            raise InputError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if image_format not in ("png", "jpeg"):
            raise InputError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.image_format = image_format
        self.max_pixels = max_pixels
        self.launch = launch
        self.totals = {"requests": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ServerProcess | None = None
        self._details: list[dict[str, Any]] | None = None
        self._rng = random.Random(0)

    def describe(self) -> dict[str, Any]:
        """What identifies the answers: the model and the generation settings (no URL, no key)."""
        return {
            "class": type(self).__name__,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "extra_body": self.extra_body,
            "image_format": self.image_format,
            "max_pixels": self.max_pixels,
        }

    def _api_key(self, config_key: str) -> str:
        if self.api_key_env is None:
            return _PLACEHOLDER_KEY
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise InputError(
                f"the API key variable ${self.api_key_env} is not set (or empty); export it, or "
                "set api_key_env: null for a server without keys",
                f"--{config_key}.init_args.api_key_env",
            )
        return key

    def setup(self, ctx: BackendContext) -> None:
        if self._client is not None:
            return
        key = self._api_key(
            ctx.config_key
        )  # before anything starts: a missing key is the user's input
        if self.launch is not None:
            self._server = ServerProcess(self.launch, self.base_url)
            self._server.wait_ready()
        self._loop = asyncio.new_event_loop()
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=0
        )
        try:
            self._loop.run_until_complete(self._check_model(ctx.config_key))
        except BaseException:
            self.teardown()
            raise

    async def _check_model(self, config_key: str) -> None:
        try:
            page = await self._client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise InputError(
                f"the endpoint {self.base_url} refused the API key in ${self.api_key_env} "
                f"(HTTP {err.status_code})",
                f"--{config_key}.init_args.api_key_env",
            ) from None
        except openai.NotFoundError:
            return  # no model listing on this server: a wrong name fails on the first request
        except openai.APIConnectionError as err:
            raise EndpointError(
                f"cannot reach the endpoint {self.base_url} ({type(err).__name__}); start the "
                f"server, fix --{config_key}.init_args.base_url, or configure launch:"
            ) from None
        except openai.APIStatusError as err:
            raise EndpointError(
                f"the endpoint {self.base_url} answered HTTP {err.status_code} to GET /models"
            ) from None
        names = sorted(m.id for m in page.data)
        if self.model not in names:
            shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
            raise InputError(
                f"the endpoint {self.base_url} does not serve model {self.model!r} (it serves "
                f"{shown or 'none'})",
                f"--{config_key}.init_args.model",
            )

    def _body(self, request: Request) -> dict[str, Any]:
        if request.messages is None:
            raise ValueError("OpenAIChatBackend needs chat messages for every request")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(
                request.messages, fmt=self.image_format, max_pixels=self.max_pixels
            ),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.extra_body:
            body["extra_body"] = self.extra_body
        return body

    async def _batch(self, requests: list[Request]) -> list[Answer]:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(request: Request) -> Answer:
            async with semaphore:
                return await chat_once(
                    self._client,
                    self._body(request),
                    policy=self.retry,
                    base_url=self.base_url,
                    api_key_env=self.api_key_env,
                    rng=self._rng,
                )

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # one request gave up: do not leave the others in flight
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def generate(self, requests: list[Request]) -> list[str]:
        if self._client is None or self._loop is None:
            raise RuntimeError("OpenAIChatBackend.generate called before setup()")
        answers = self._loop.run_until_complete(self._batch(requests))
        self._details = []
        for answer in answers:
            self.totals["requests"] += 1 + answer.retries
            self.totals["retries"] += answer.retries
            self.totals["prompt_tokens"] += answer.usage.get("prompt_tokens", 0)
            self.totals["completion_tokens"] += answer.usage.get("completion_tokens", 0)
            self._details.append({**answer.details(), "error": answer.error})
        return [a.text for a in answers]

    def item_details(self) -> list[dict[str, Any]] | None:
        return self._details

    def teardown(self) -> None:
        """Close the client and stop a launched server (safe to call twice)."""
        if self._client is not None and self._loop is not None:
            self._loop.run_until_complete(self._client.close())
        if self._loop is not None:
            self._loop.close()
        self._client, self._loop = None, None
        if self._server is not None:
            self._server.stop()
            self._server = None
