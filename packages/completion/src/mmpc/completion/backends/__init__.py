"""Completion backends behind one interface (:mod:`mmpc.completion.backends.base`).

Names resolve lazily so that importing one backend never imports diffusers or
sentence-transformers for another.
"""

from __future__ import annotations

from mmpc.completion.backends.base import BackendContext, Generator, Renderer, Request
from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
    "MLLMBackend": "mmpc.completion.backends.mllm",
    "TextLLMBackend": "mmpc.completion.backends.textllm",
    "DiffusionBackend": "mmpc.completion.backends.diffusion",
    "OfflineVisionLM": "mmpc.completion.backends.offline_vlm",
    "OpenAIChatBackend": "mmpc.completion.backends.served",
    "RetrievalTitleBaseline": "mmpc.completion.backends.retrieval",
    "RetrievalRenderer": "mmpc.completion.backends.retrieval",
    "PromptBuilder": "mmpc.completion.backends.prompting",
    "ChatPromptBuilder": "mmpc.completion.backends.prompting",
    "OfflineVLMPromptBuilder": "mmpc.completion.backends.prompting",
    "prompt_builder": "mmpc.completion.backends.prompting",
    "TitlePromptBaseline": "mmpc.completion.backends.title_prompt",
}

_lazy_names, __getattr__, _ = lazy_exports(__name__, _EXPORTS)
__all__ = ["BackendContext", "Generator", "Renderer", "Request", *_lazy_names]
