"""Titles and descriptions of synthetic items from their attributes (varied templates).

Every attribute is written through one of several words (``vocab.*_WORDS``), and templates vary
which attributes appear and in what order, so a title is not a fixed function of one attribute;
product type and colour are still recoverable from it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmpc.completion.catalog.vocab import COLOUR_WORDS, PATTERN_WORDS, SIZE_WORDS, TYPES

FEATURES: dict[str, list[str]] = {
    "All_Beauty": ["long-lasting", "cruelty-free", "vegan formula", "travel friendly", "gift set"],
    "Arts_Crafts_and_Sewing": [
        "for beginners",
        "professional grade",
        "non-toxic",
        "5-piece set",
        "easy to clean",
    ],
    "Electronics": [
        "USB-C charging",
        "noise reduction",
        "30h battery",
        "bluetooth 5.3",
        "fast charging",
    ],
    "Home_and_Kitchen": [
        "dishwasher safe",
        "easy to clean",
        "gift for mom",
        "modern design",
        "set of 2",
    ],
    "Industrial_and_Scientific": [
        "heavy duty",
        "lab grade",
        "corrosion resistant",
        "ISO certified",
        "precision made",
    ],
    "Musical_Instruments": [
        "for beginners",
        "studio quality",
        "with gig bag",
        "rich tone",
        "stage ready",
    ],
    "Office_Products": [
        "for school and office",
        "refillable",
        "ergonomic",
        "pack of 3",
        "jam free",
    ],
    "Toys_and_Games": [
        "ages 3+",
        "educational toy",
        "gift for kids",
        "safe and durable",
        "party favor",
    ],
    "Video_Games": [
        "wireless",
        "limited edition",
        "with charging cable",
        "4K ready",
        "multiplayer",
    ],
}
TITLE_TEMPLATES = [
    (3, "{brand} {colour} {noun}, {material}, {size}"),
    (3, "{brand} {size} {pattern} {noun} in {colour}"),
    (3, "{Colour} {material} {noun} by {brand} - {size}"),
    (2, "{Noun} ({colour}, {pattern}) - {brand} {feature}"),
    (2, "{brand} {noun} - {feature}, {colour} {pattern} design"),
    (2, "{Size} {noun} with {feature} | {brand} | {colour}"),
    (1, "{brand} {noun}, {feature}, {size}"),
]
DESCRIPTION_SENTENCES = [
    [
        "This {noun} from {brand} comes in {colour} with a {pattern} finish.",
        "A {pattern} {colour} {noun} made by {brand}.",
        "{brand} presents a {colour} {noun} with a {pattern} look.",
    ],
    [
        "It is made of {material} and is {feature}.",
        "Crafted from {material}; {feature}.",
        "The {material} build is {feature} and built to last.",
    ],
    [
        "The {size} size suits everyday use.",
        "Available in a {size} size.",
        "Choose the {size} version for your needs.",
        "",
    ],
]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _words(attrs: Mapping[str, str], category: str, rng: np.random.Generator) -> dict[str, str]:
    nouns = TYPES[category][attrs["product_type"]][0]
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    words = {
        "brand": attrs["brand"],
        "noun": pick(nouns),
        "colour": pick(COLOUR_WORDS[attrs["color"]]),
        "pattern": pick(PATTERN_WORDS[attrs["pattern"]]),
        "material": attrs["material"],
        "size": pick(SIZE_WORDS[attrs["size"]]),
        "feature": pick(FEATURES[category]),
    }
    words.update({k.capitalize(): _cap(v) for k, v in list(words.items())})
    return words


def make_title(attrs: Mapping[str, str], category: str, rng: np.random.Generator) -> str:
    """One title: a weighted random template filled with randomly chosen attribute words."""
    weights = np.array([w for w, _ in TITLE_TEMPLATES], float)
    template = TITLE_TEMPLATES[int(rng.choice(len(weights), p=weights / weights.sum()))][1]
    return template.format(**_words(attrs, category, rng))


def make_description(attrs: Mapping[str, str], category: str, rng: np.random.Generator) -> str:
    """Two or three sentences, each from a random template, filled with fresh word choices."""
    words = _words(attrs, category, rng)
    parts = [
        _cap(opts[int(rng.integers(len(opts)))].format(**words)) for opts in DESCRIPTION_SENTENCES
    ]
    return " ".join(p for p in parts if p)
