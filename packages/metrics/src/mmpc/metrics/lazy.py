"""Lazy package exports (PEP 562), one helper for every ``mmpc.*`` ``__init__``.

A package lists ``{public name: defining module}`` and gets a module ``__getattr__`` / ``__dir__``
that import the defining module on first use, so ``import mmpc.recsys`` stays cheap and a user who
needs one class never pays for the others' imports (open_clip, bert-score, torch-geometric...).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``exports`` lazily.

    Args:
        package: The package's ``__name__`` (used in the ``AttributeError`` message).
        exports: Public name → dotted name of the module that defines it.

    Example:
        >>> exports = {"RecallAtK": "mmpc.metrics.ranking"}
        >>> __all__, __getattr__, __dir__ = lazy_exports(__name__, exports)
    """
    names = sorted(exports)

    def module_getattr(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def module_dir() -> list[str]:
        return list(names)

    return names, module_getattr, module_dir
