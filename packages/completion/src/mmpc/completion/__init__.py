"""mmpc.completion: catalogues and missing-modality completion (docs/completion.md).

Public names resolve lazily (PEP 562), so ``import mmpc.completion`` does not import Lightning,
transformers or diffusers until one of them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CompletionDataModule": "mmpc.completion.data",
    "CompletionModule": "mmpc.completion.module",
    "CompletionWriter": "mmpc.completion.writer",
    "read_records": "mmpc.completion.writer",
    "output_dir": "mmpc.completion.writer",
    "ParseResult": "mmpc.completion.parsing",
    "parse_answer": "mmpc.completion.parsing",
    "PromptTemplate": "mmpc.completion.prompts",
    "build_messages": "mmpc.completion.prompts",
    "build_text_messages": "mmpc.completion.prompts",
    "default_template": "mmpc.completion.prompts",
    "item_seed": "mmpc.completion.module",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmpc.completion' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
