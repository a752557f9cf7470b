"""Product catalogues: the on-disk format, the synthetic catalogue, the Amazon Reviews 2023 loader.

``Catalog.open(root)`` reads a validated catalogue folder; ``synthesize(preset, seed, out)`` makes
the embedded synthetic one (the default everywhere, always labelled synthetic). Names resolve
lazily (PEP 562), so importing one light submodule (e.g. ``vocab`` for ``mmpc data --help``) does
not import pandas.
"""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
    "load_amazon": "mmpc.completion.catalog.amazon",
    "Catalog": "mmpc.completion.catalog.format",
    "CatalogError": "mmpc.completion.catalog.format",
    "write_catalog": "mmpc.completion.catalog.format",
    "drop_repeats": "mmpc.completion.catalog.kcore",
    "kcore": "mmpc.completion.catalog.kcore",
    "export_mmrec": "mmpc.completion.catalog.mmrec",
    "draw_samples": "mmpc.completion.catalog.splits",
    "split_interactions": "mmpc.completion.catalog.splits",
    "SynthConfig": "mmpc.completion.catalog.synthetic",
    "synthesize": "mmpc.completion.catalog.synthetic",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
