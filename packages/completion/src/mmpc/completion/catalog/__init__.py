"""Product catalogues: the on-disk format, the synthetic catalogue, the Amazon Reviews 2023 loader.

``Catalog.open(root)`` reads a validated catalogue folder; ``synthesize(preset, seed, out)`` makes
the embedded synthetic one (the default everywhere, always labelled synthetic).
"""

from mmpc.completion.catalog.amazon import load_amazon
from mmpc.completion.catalog.format import Catalog, CatalogError, write_catalog
from mmpc.completion.catalog.kcore import drop_repeats, kcore
from mmpc.completion.catalog.mmrec import export_mmrec
from mmpc.completion.catalog.splits import draw_samples, split_interactions
from mmpc.completion.catalog.synthetic import SynthConfig, synthesize

__all__ = [
    "Catalog",
    "CatalogError",
    "SynthConfig",
    "draw_samples",
    "drop_repeats",
    "export_mmrec",
    "kcore",
    "load_amazon",
    "split_interactions",
    "synthesize",
    "write_catalog",
]
