"""Completion backends behind one interface (:mod:`mmpc.completion.backends.base`).

Names resolve lazily so that importing one backend never imports diffusers or
sentence-transformers for another.
"""

from __future__ import annotations

import importlib
from typing import Any

from mmpc.completion.backends.base import BackendContext, Generator, Renderer, Request

_LAZY = {
    "MLLMBackend": "mmpc.completion.backends.mllm",
    "TextLLMBackend": "mmpc.completion.backends.textllm",
    "DiffusionBackend": "mmpc.completion.backends.diffusion",
    "OfflineVisionLM": "mmpc.completion.backends.offline_vlm",
    "OpenAIChatBackend": "mmpc.completion.backends.served",
    "RetrievalTitleBaseline": "mmpc.completion.backends.retrieval",
    "RetrievalRenderer": "mmpc.completion.backends.retrieval",
    "TitlePromptBaseline": "mmpc.completion.backends.title_prompt",
}

__all__ = ["BackendContext", "Generator", "Renderer", "Request", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mmpc.completion.backends' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
