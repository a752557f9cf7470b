"""One Chat Completions request with retries, on the official ``openai`` client (async).

Retries are this module's own loop, and the client is built with ``max_retries=0``: the client's
built-in retry does honour ``Retry-After``, but it neither reports how many retries a request took
nor lets the caller cap the wait, and the report counts retries per completer. The loop retries
429, 408 and 5xx answers, timeouts and connection errors; it waits what the server asks for
(``Retry-After`` / ``Retry-After-Ms``, seconds or an HTTP date, capped at ``max_backoff_s``),
otherwise ``min(backoff_s * 2**attempt, max_backoff_s)`` plus up to ``backoff_s`` of jitter so that
many clients do not come back at once.

Other failures are not retried: 401/403 (the key is refused) and 404 (no such model) stop the run
as an input error (exit 2); a 400/413/422 is the item's own problem (e.g. a prompt over the
context) and becomes its ``error``; an endpoint still failing after the retries stops the run with
:class:`EndpointError` (exit 3) naming the URL. No message ever carries the API key: the client
holds it, errors only name the environment variable.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from mmpc.metrics.errors import InputError, MissingWeightsError

__all__ = ["Answer", "EndpointError", "RetryPolicy", "chat_once", "retry_after_s"]


class EndpointError(MissingWeightsError):
    """The endpoint cannot be reached or keeps failing (a missing resource: exit code 3)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed request.

    Attributes:
        max_retries: retries after the first try (0: fail at once).
        backoff_s: the first wait; doubles with every retry.
        max_backoff_s: the longest wait, ``Retry-After`` included.
    """

    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        base = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        return base + rng.uniform(0.0, self.backoff_s)


@dataclass
class Answer:
    """One request's outcome.

    Attributes:
        text: the answer's text ("" when there is none).
        error: why the item has no usable answer (not text, refused), else ``None``.
        latency_s: wall time from the first try to the answer, waits included.
        retries: how many times the request was sent again.
        usage: the token counts the server reported (``prompt_tokens``, ``completion_tokens``,
            ``total_tokens``), empty when it reported none.
        finish_reason: the server's reason to stop (``"stop"``, ``"length"``, ...).
    """

    text: str = ""
    error: str | None = None
    latency_s: float = 0.0
    retries: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None

    def details(self) -> dict[str, Any]:
        """The fields kept in the item's record (``"served"`` key)."""
        return {
            "latency_s": round(self.latency_s, 6),
            "retries": self.retries,
            "usage": self.usage,
            "finish_reason": self.finish_reason,
        }


def retry_after_s(headers: Any) -> float | None:
    """Seconds asked for by ``Retry-After-Ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return None if parsed is None else parsed.timestamp() - time.time()


def _retryable(err: Exception) -> tuple[bool, float | None]:
    if isinstance(err, openai.APIConnectionError):  # timeouts included
        return True, None
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        if status in (408, 429) or status >= 500:
            return True, retry_after_s(err.response.headers)
    return False, None


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}"


async def chat_once(
    client: openai.AsyncOpenAI,
    body: dict[str, Any],
    *,
    policy: RetryPolicy,
    base_url: str,
    api_key_env: str | None,
    rng: random.Random,
) -> Answer:
    """Send one Chat Completions request ``body`` (keyword arguments of ``create``), retrying.

    Raises:
        InputError: the endpoint refused the key (401/403) or does not know the model (404).
        EndpointError: still unreachable or failing after ``policy.max_retries`` retries.
    """
    start = time.perf_counter()
    attempt = 0
    while True:
        try:
            completion = await client.chat.completions.create(**body)
            break
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            where = f"${api_key_env}" if api_key_env else "api_key_env is not set"
            raise InputError(
                f"the endpoint {base_url} refused the request ({_one_line(err)}); check the API "
                "key",
                where,
            ) from None
        except openai.NotFoundError as err:
            raise InputError(
                f"the endpoint {base_url} does not serve model {body['model']!r} "
                f"({_one_line(err)})",
                "model",
            ) from None
        except openai.APIStatusError as err:
            retry, after = _retryable(err)
            if not retry:
                return Answer(
                    error=f"request refused: {_one_line(err)}",
                    latency_s=time.perf_counter() - start,
                    retries=attempt,
                )
            failure: Exception = err
        except openai.APIConnectionError as err:
            after, failure = None, err
        if attempt >= policy.max_retries:
            raise EndpointError(
                f"the endpoint {base_url} failed after {attempt} retries ({_one_line(failure)}); "
                "finished items are kept, rerun the same command to resume"
            ) from None
        await asyncio.sleep(policy.delay(attempt, after, rng))
        attempt += 1
    latency = time.perf_counter() - start
    usage = completion.usage
    counts = {}
    if usage is not None:
        counts = {
            k: int(getattr(usage, k))
            for k in ("prompt_tokens", "completion_tokens", "total_tokens")
            if getattr(usage, k, None) is not None
        }
    if not completion.choices:
        return Answer(
            error="the server sent no answer (no choices)",
            latency_s=latency,
            retries=attempt,
            usage=counts,
        )
    choice = completion.choices[0]
    content = choice.message.content
    answer = Answer(
        latency_s=latency, retries=attempt, usage=counts, finish_reason=choice.finish_reason
    )
    if isinstance(content, str):
        answer.text = content
    else:
        what = "tool calls" if choice.message.tool_calls else "no text"
        refusal = getattr(choice.message, "refusal", None)
        answer.error = f"the answer is not text ({what}; finish_reason={choice.finish_reason})"
        if refusal:
            answer.error += f"; refusal: {' '.join(str(refusal).split())[:200]}"
    return answer
