"""Parse a model's JSON answer into the single value the prompt asked for.

Contract (PROTOCOL.md, "Parsing a model answer"):

1. try strict JSON on the whole answer (after trimming whitespace);
2. otherwise strip Markdown code fences (```` ```json ... ``` ````) and parse again;
3. otherwise take the outermost ``{...}`` span (first ``{`` to last ``}``) and parse it;
4. the parsed value must be a JSON object whose ``key`` holds a non-empty string (after trimming);
   a missing, empty or non-string key is a parse failure.

Failures never raise: they come back as ``ParseResult(value=None, error=<one line>)`` so that a
run records them per item and keeps going.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ParseResult", "parse_answer"]

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_UNCLOSED_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*)$", re.DOTALL)


@dataclass(frozen=True)
class ParseResult:
    """Outcome of :func:`parse_answer`.

    Attributes:
        value: the trimmed string under the requested key, or ``None`` on failure.
        error: ``None`` on success, else one line saying what was wrong.
        stage: which step produced the JSON object: ``"strict"``, ``"fence"``, ``"braces"``, or
            ``None`` when nothing parsed.
    """

    value: str | None
    error: str | None
    stage: str | None = None

    @property
    def ok(self) -> bool:
        """True when a non-empty value was found."""
        return self.error is None


_NOT_JSON = object()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return _NOT_JSON


def _candidates(raw: str) -> list[tuple[str, str]]:
    """The texts to try, in protocol order, each tagged with its stage name."""
    text = raw.strip()
    out: list[tuple[str, str]] = [("strict", text)]
    fenced = [m.group(1).strip() for m in _FENCE.finditer(text)]
    if not fenced:
        # A generation cut off by max_new_tokens can leave a fence open.
        m = _UNCLOSED_FENCE.search(text)
        if m:
            fenced = [m.group(1).strip()]
    out += [("fence", f) for f in fenced]
    for source in [text, *fenced]:
        start, end = source.find("{"), source.rfind("}")
        if start != -1 and end > start:
            out.append(("braces", source[start : end + 1]))
    return out


def parse_answer(raw: str | None, key: str) -> ParseResult:
    """Extract ``obj[key]`` from a model answer that should be a one-key JSON object.

    Args:
        raw: the decoded model answer (special tokens already removed).
        key: the key the prompt asked for (``"title"`` for i2t, ``"prompt"`` for t2i).

    Returns:
        ``ParseResult(value, None, stage)`` on success, ``ParseResult(None, error, stage)`` on a
        failure; never raises.
    """
    if raw is None or not raw.strip():
        return ParseResult(None, "empty answer")
    found_object: tuple[str, dict[str, Any]] | None = None
    for stage, candidate in _candidates(raw):
        obj = _loads(candidate)
        if isinstance(obj, dict):
            found_object = (stage, obj)
            break
    if found_object is None:
        return ParseResult(None, "no JSON object found in answer")
    stage, obj = found_object
    if key not in obj:
        keys = ", ".join(repr(k) for k in list(obj)[:5]) or "none"
        return ParseResult(None, f"JSON object has no key {key!r} (keys: {keys})", stage)
    value = obj[key]
    if not isinstance(value, str):
        return ParseResult(
            None, f"key {key!r} holds {type(value).__name__}, expected a string", stage
        )
    value = value.strip()
    if not value:
        return ParseResult(None, f"key {key!r} is empty", stage)
    return ParseResult(value, None, stage)
