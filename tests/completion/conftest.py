"""Shared fixtures of the completion suite: the tiny synthetic catalogue and tiny random models
saved to folders, defined once in ``tests/_fixtures/completion_models.py`` (also used by the CLI
tests)."""

from tests._fixtures.completion_models import (  # noqa: F401  (fixtures)
    tiny_catalog,
    tiny_gemma,
    tiny_llm,
    tiny_qwen,
    tiny_sd3,
)
