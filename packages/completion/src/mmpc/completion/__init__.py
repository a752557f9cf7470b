"""mmpc.completion: catalogues and missing-modality completion (docs/completion.md).

Public names resolve lazily (PEP 562), so ``import mmpc.completion`` does not import Lightning,
transformers or diffusers until one of them is used.
"""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
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

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
