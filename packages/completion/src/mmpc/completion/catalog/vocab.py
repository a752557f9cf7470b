"""The attribute vocabulary of the synthetic catalogue (data only; drawn by ``render``).

Each product type has a silhouette: a list of primitives in unit coordinates (0..1 on the canvas)
with a colour role: ``body`` (primary colour + pattern), ``trim`` (secondary colour), ``dark``,
``light``. Primitives: ``rect``/``rrect``/``ellipse`` with a box ``(x0, y0, x1, y1)``, ``poly``
with a point list, ``line`` with a point list and a width (unit), ``arc`` with a box, start, end
and width, ``chord`` with a box, start and end. Brand names are invented; any resemblance to real
brands is accidental.
"""

from __future__ import annotations

Shape = tuple  # (kind, role, *geometry)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 40),
    "orange": (240, 130, 20),
    "yellow": (240, 210, 40),
    "green": (40, 150, 60),
    "teal": (20, 150, 150),
    "blue": (40, 90, 210),
    "purple": (120, 50, 170),
    "pink": (240, 120, 180),
    "brown": (120, 75, 40),
    "black": (25, 25, 28),
    "white": (245, 245, 240),
    "grey": (135, 135, 140),
}
COLOUR_WORDS: dict[str, list[str]] = {
    "red": ["red", "crimson", "cherry red", "scarlet"],
    "orange": ["orange", "tangerine", "burnt orange"],
    "yellow": ["yellow", "lemon", "sunflower yellow"],
    "green": ["green", "forest green", "emerald"],
    "teal": ["teal", "turquoise", "aqua"],
    "blue": ["blue", "cobalt blue", "royal blue"],
    "purple": ["purple", "violet", "plum"],
    "pink": ["pink", "rose pink", "blush"],
    "brown": ["brown", "chocolate", "walnut brown"],
    "black": ["black", "jet black", "matte black"],
    "white": ["white", "ivory", "snow white"],
    "grey": ["grey", "slate grey", "charcoal"],
}
PATTERNS = ["solid", "stripes", "dots", "checks", "gradient"]
PATTERN_WORDS: dict[str, list[str]] = {
    "solid": ["solid", "plain", "classic"],
    "stripes": ["striped", "pinstripe", "stripe-pattern"],
    "dots": ["polka dot", "dotted", "spotted"],
    "checks": ["checkered", "plaid", "gingham"],
    "gradient": ["ombre", "gradient", "two-tone fade"],
}
MATERIALS = ["plastic", "metal", "wood", "fabric", "glass", "silicone"]
SIZES = ["small", "medium", "large"]
SIZE_WORDS: dict[str, list[str]] = {
    "small": ["small", "mini", "compact", "travel size"],
    "medium": ["medium", "standard", "regular", "everyday"],
    "large": ["large", "XL", "oversized", "family size"],
}
BACKGROUNDS = ["white", "light_grey", "cream", "soft_blue", "gradient"]
BRANDS: dict[str, list[str]] = {
    "All_Beauty": ["Lumora", "Velvessa", "Aurabelle", "Glowen"],
    "Arts_Crafts_and_Sewing": ["Craftwick", "Stitchly", "Pigmenta", "Loomberry"],
    "Electronics": ["Voltrix", "Nexaro", "Ampliq", "Zentech"],
    "Home_and_Kitchen": ["Hearthly", "Casabo", "Nestora", "Kitchara"],
    "Industrial_and_Scientific": ["Labrix", "Torqmax", "Ferrum", "Precisa"],
    "Musical_Instruments": ["Sonavo", "Chordex", "Melodyne", "Rhythma"],
    "Office_Products": ["Deskline", "Paperon", "Officio", "Clipwise"],
    "Toys_and_Games": ["Playzo", "Toyvana", "Funbrix", "Kiddora"],
    "Video_Games": ["Pixelon", "Gamora", "Consolix", "Arcadia"],
}

# Product types per category: {type: (title nouns, silhouette)}.
TYPES: dict[str, dict[str, tuple[list[str], list[Shape]]]] = {
    "All_Beauty": {
        "lipstick": (
            ["lipstick", "lip colour stick", "matte lipstick"],
            [
                ("rrect", "dark", (0.38, 0.50, 0.62, 0.90)),
                ("rect", "light", (0.40, 0.44, 0.60, 0.50)),
                ("poly", "body", [(0.42, 0.44), (0.42, 0.18), (0.58, 0.10), (0.58, 0.44)]),
            ],
        ),
        "perfume": (
            ["perfume", "eau de parfum", "fragrance bottle"],
            [
                ("rrect", "body", (0.25, 0.38, 0.75, 0.90)),
                ("rect", "light", (0.44, 0.28, 0.56, 0.38)),
                ("rrect", "trim", (0.38, 0.14, 0.62, 0.28)),
            ],
        ),
        "nail_polish": (
            ["nail polish", "nail lacquer", "gel polish"],
            [
                ("ellipse", "body", (0.28, 0.48, 0.72, 0.90)),
                ("rect", "trim", (0.42, 0.12, 0.58, 0.52)),
            ],
        ),
        "hair_brush": (
            ["hair brush", "paddle brush", "detangling brush"],
            [
                ("ellipse", "body", (0.22, 0.08, 0.78, 0.56)),
                ("rrect", "trim", (0.43, 0.50, 0.57, 0.94)),
                ("ellipse", "dark", (0.30, 0.16, 0.70, 0.48)),
            ],
        ),
    },
    "Arts_Crafts_and_Sewing": {
        "yarn": (
            ["yarn", "knitting yarn skein", "wool yarn ball"],
            [
                ("ellipse", "body", (0.18, 0.18, 0.82, 0.82)),
                ("arc", "trim", (0.26, 0.26, 0.74, 0.74), 200, 340, 0.03),
                ("arc", "trim", (0.34, 0.30, 0.86, 0.82), 150, 260, 0.03),
            ],
        ),
        "scissors": (
            ["scissors", "craft scissors", "fabric shears"],
            [
                ("line", "dark", [(0.30, 0.12), (0.62, 0.62)], 0.05),
                ("line", "dark", [(0.70, 0.12), (0.38, 0.62)], 0.05),
                ("ellipse", "body", (0.18, 0.58, 0.46, 0.90)),
                ("ellipse", "body", (0.54, 0.58, 0.82, 0.90)),
            ],
        ),
        "paint_tube": (
            ["paint tube", "acrylic paint", "oil colour tube"],
            [
                ("poly", "body", [(0.20, 0.30), (0.80, 0.30), (0.74, 0.70), (0.26, 0.70)]),
                ("rect", "trim", (0.40, 0.70, 0.60, 0.90)),
                ("rect", "light", (0.20, 0.22, 0.80, 0.30)),
            ],
        ),
        "paintbrush": (
            ["paintbrush", "artist brush", "paint brush set"],
            [
                ("rrect", "body", (0.44, 0.06, 0.56, 0.58)),
                ("rect", "light", (0.42, 0.58, 0.58, 0.72)),
                ("poly", "dark", [(0.42, 0.72), (0.58, 0.72), (0.50, 0.94)]),
            ],
        ),
    },
    "Electronics": {
        "headphones": (
            ["headphones", "over-ear headphones", "wireless headset"],
            [
                ("arc", "body", (0.18, 0.10, 0.82, 0.78), 180, 360, 0.07),
                ("rrect", "body", (0.12, 0.42, 0.30, 0.80)),
                ("rrect", "body", (0.70, 0.42, 0.88, 0.80)),
                ("rrect", "trim", (0.16, 0.48, 0.26, 0.74)),
                ("rrect", "trim", (0.74, 0.48, 0.84, 0.74)),
            ],
        ),
        "smartphone": (
            ["smartphone", "mobile phone", "unlocked cell phone"],
            [
                ("rrect", "body", (0.32, 0.06, 0.68, 0.94)),
                ("rect", "dark", (0.35, 0.13, 0.65, 0.83)),
                ("ellipse", "trim", (0.47, 0.86, 0.53, 0.91)),
            ],
        ),
        "laptop": (
            ["laptop", "notebook computer", "ultrabook"],
            [
                ("rrect", "body", (0.20, 0.18, 0.80, 0.62)),
                ("rect", "dark", (0.24, 0.22, 0.76, 0.58)),
                ("poly", "trim", [(0.14, 0.64), (0.86, 0.64), (0.94, 0.74), (0.06, 0.74)]),
            ],
        ),
        "speaker": (
            ["speaker", "bluetooth speaker", "portable speaker"],
            [
                ("rrect", "body", (0.28, 0.10, 0.72, 0.90)),
                ("ellipse", "dark", (0.36, 0.44, 0.64, 0.80)),
                ("ellipse", "trim", (0.42, 0.18, 0.58, 0.34)),
            ],
        ),
    },
    "Home_and_Kitchen": {
        "mug": (
            ["mug", "coffee mug", "ceramic cup"],
            [
                ("arc", "trim", (0.58, 0.34, 0.86, 0.70), 270, 90, 0.05),
                ("rrect", "body", (0.22, 0.24, 0.70, 0.86)),
            ],
        ),
        "teapot": (
            ["teapot", "tea kettle", "ceramic teapot"],
            [
                ("poly", "trim", [(0.70, 0.55), (0.92, 0.34), (0.92, 0.40), (0.74, 0.68)]),
                ("arc", "trim", (0.10, 0.40, 0.34, 0.72), 90, 270, 0.04),
                ("ellipse", "body", (0.22, 0.34, 0.78, 0.88)),
                ("ellipse", "trim", (0.44, 0.24, 0.56, 0.36)),
            ],
        ),
        "cushion": (
            ["throw pillow", "cushion", "decorative pillow"],
            [
                (
                    "poly",
                    "body",
                    [
                        (0.16, 0.20),
                        (0.50, 0.26),
                        (0.84, 0.20),
                        (0.78, 0.50),
                        (0.84, 0.80),
                        (0.50, 0.74),
                        (0.16, 0.80),
                        (0.22, 0.50),
                    ],
                )
            ],
        ),
        "lamp": (
            ["table lamp", "bedside lamp", "lamp"],
            [
                ("poly", "body", [(0.32, 0.12), (0.68, 0.12), (0.80, 0.46), (0.20, 0.46)]),
                ("rect", "trim", (0.47, 0.46, 0.53, 0.82)),
                ("ellipse", "trim", (0.32, 0.80, 0.68, 0.90)),
            ],
        ),
    },
    "Industrial_and_Scientific": {
        "flask": (
            ["lab flask", "erlenmeyer flask", "glass beaker"],
            [
                (
                    "poly",
                    "body",
                    [
                        (0.42, 0.10),
                        (0.58, 0.10),
                        (0.58, 0.40),
                        (0.80, 0.88),
                        (0.20, 0.88),
                        (0.42, 0.40),
                    ],
                ),
                ("rect", "trim", (0.40, 0.06, 0.60, 0.12)),
            ],
        ),
        "gear": (
            ["gear", "spur gear", "drive cog"],
            [
                (
                    "poly",
                    "body",
                    [
                        (0.50, 0.08),
                        (0.60, 0.20),
                        (0.80, 0.20),
                        (0.80, 0.40),
                        (0.92, 0.50),
                        (0.80, 0.60),
                        (0.80, 0.80),
                        (0.60, 0.80),
                        (0.50, 0.92),
                        (0.40, 0.80),
                        (0.20, 0.80),
                        (0.20, 0.60),
                        (0.08, 0.50),
                        (0.20, 0.40),
                        (0.20, 0.20),
                        (0.40, 0.20),
                    ],
                ),
                ("ellipse", "light", (0.40, 0.40, 0.60, 0.60)),
            ],
        ),
        "wrench": (
            ["wrench", "adjustable spanner", "combination wrench"],
            [
                ("line", "body", [(0.26, 0.74), (0.70, 0.30)], 0.09),
                ("ellipse", "body", (0.58, 0.10, 0.90, 0.42)),
                ("ellipse", "light", (0.70, 0.14, 0.86, 0.30)),
                ("ellipse", "trim", (0.14, 0.62, 0.36, 0.84)),
            ],
        ),
        "helmet": (
            ["safety helmet", "hard hat", "protective helmet"],
            [
                ("chord", "body", (0.20, 0.24, 0.80, 0.96), 180, 360),
                ("rrect", "trim", (0.12, 0.56, 0.88, 0.66)),
            ],
        ),
    },
    "Musical_Instruments": {
        "guitar": (
            ["acoustic guitar", "guitar", "steel-string guitar"],
            [
                ("rect", "trim", (0.46, 0.06, 0.54, 0.50)),
                ("ellipse", "body", (0.30, 0.40, 0.70, 0.70)),
                ("ellipse", "body", (0.24, 0.58, 0.76, 0.94)),
                ("ellipse", "dark", (0.44, 0.60, 0.56, 0.72)),
            ],
        ),
        "drum": (
            ["snare drum", "drum", "percussion drum"],
            [
                ("rect", "body", (0.20, 0.36, 0.80, 0.76)),
                ("ellipse", "light", (0.20, 0.26, 0.80, 0.46)),
                ("ellipse", "body", (0.20, 0.66, 0.80, 0.86)),
                ("line", "trim", [(0.30, 0.14), (0.46, 0.34)], 0.03),
            ],
        ),
        "keyboard": (
            ["digital piano", "keyboard", "midi keyboard"],
            [
                ("rrect", "body", (0.06, 0.34, 0.94, 0.70)),
                ("rect", "light", (0.10, 0.48, 0.90, 0.66)),
                ("line", "dark", [(0.30, 0.48), (0.30, 0.66)], 0.015),
                ("line", "dark", [(0.50, 0.48), (0.50, 0.66)], 0.015),
                ("line", "dark", [(0.70, 0.48), (0.70, 0.66)], 0.015),
            ],
        ),
        "microphone": (
            ["microphone", "studio microphone", "vocal mic"],
            [
                ("rrect", "trim", (0.44, 0.46, 0.56, 0.90)),
                ("ellipse", "body", (0.34, 0.10, 0.66, 0.50)),
                ("line", "dark", [(0.36, 0.30), (0.64, 0.30)], 0.015),
            ],
        ),
    },
    "Office_Products": {
        "stapler": (
            ["stapler", "desktop stapler", "heavy-duty stapler"],
            [
                ("rrect", "trim", (0.14, 0.62, 0.86, 0.74)),
                ("poly", "body", [(0.14, 0.58), (0.20, 0.40), (0.86, 0.48), (0.86, 0.60)]),
            ],
        ),
        "notebook": (
            ["notebook", "spiral notebook", "journal"],
            [
                ("rect", "body", (0.26, 0.10, 0.76, 0.90)),
                ("rect", "light", (0.40, 0.30, 0.68, 0.42)),
                ("line", "dark", [(0.28, 0.14), (0.28, 0.86)], 0.025),
            ],
        ),
        "pen": (
            ["ballpoint pen", "pen", "gel pen"],
            [
                ("line", "body", [(0.22, 0.80), (0.74, 0.28)], 0.08),
                ("poly", "dark", [(0.22, 0.80), (0.12, 0.90), (0.18, 0.76)]),
                ("line", "trim", [(0.66, 0.28), (0.78, 0.16)], 0.08),
            ],
        ),
        "binder": (
            ["ring binder", "binder", "document folder"],
            [
                ("rect", "body", (0.22, 0.08, 0.78, 0.92)),
                ("rect", "trim", (0.22, 0.08, 0.34, 0.92)),
                ("rect", "light", (0.44, 0.24, 0.70, 0.40)),
            ],
        ),
    },
    "Toys_and_Games": {
        "teddy_bear": (
            ["teddy bear", "plush bear", "stuffed animal"],
            [
                ("ellipse", "body", (0.22, 0.10, 0.40, 0.28)),
                ("ellipse", "body", (0.60, 0.10, 0.78, 0.28)),
                ("ellipse", "body", (0.28, 0.14, 0.72, 0.52)),
                ("ellipse", "body", (0.24, 0.46, 0.76, 0.92)),
                ("ellipse", "trim", (0.42, 0.32, 0.58, 0.46)),
            ],
        ),
        "ball": (
            ["ball", "bouncy ball", "play ball"],
            [
                ("ellipse", "body", (0.20, 0.20, 0.80, 0.80)),
                ("arc", "trim", (0.20, 0.20, 0.80, 0.80), 200, 340, 0.04),
                ("line", "trim", [(0.20, 0.50), (0.80, 0.50)], 0.03),
            ],
        ),
        "toy_car": (
            ["toy car", "die-cast car", "race car toy"],
            [
                (
                    "poly",
                    "body",
                    [
                        (0.10, 0.62),
                        (0.18, 0.44),
                        (0.34, 0.42),
                        (0.44, 0.28),
                        (0.66, 0.28),
                        (0.76, 0.42),
                        (0.90, 0.46),
                        (0.90, 0.62),
                    ],
                ),
                ("ellipse", "dark", (0.18, 0.56, 0.34, 0.72)),
                ("ellipse", "dark", (0.64, 0.56, 0.80, 0.72)),
            ],
        ),
        "blocks": (
            ["building blocks", "stacking blocks", "block set"],
            [
                ("rect", "body", (0.16, 0.56, 0.48, 0.88)),
                ("rect", "trim", (0.52, 0.56, 0.84, 0.88)),
                ("rect", "body", (0.34, 0.22, 0.66, 0.54)),
            ],
        ),
    },
    "Video_Games": {
        "controller": (
            ["game controller", "gamepad", "wireless controller"],
            [
                ("ellipse", "body", (0.10, 0.30, 0.46, 0.78)),
                ("ellipse", "body", (0.54, 0.30, 0.90, 0.78)),
                ("rect", "body", (0.28, 0.30, 0.72, 0.62)),
                ("ellipse", "trim", (0.66, 0.40, 0.76, 0.50)),
                ("rect", "dark", (0.20, 0.44, 0.34, 0.48)),
            ],
        ),
        "console": (
            ["game console", "video game console", "gaming system"],
            [
                ("rrect", "body", (0.14, 0.36, 0.86, 0.70)),
                ("rect", "trim", (0.14, 0.52, 0.86, 0.56)),
                ("ellipse", "light", (0.72, 0.42, 0.80, 0.50)),
            ],
        ),
        "game_case": (
            ["video game", "game disc case", "game edition"],
            [
                ("rect", "body", (0.26, 0.06, 0.74, 0.94)),
                ("rect", "trim", (0.26, 0.06, 0.74, 0.20)),
                ("ellipse", "light", (0.36, 0.36, 0.64, 0.64)),
            ],
        ),
        "handheld": (
            ["handheld console", "portable game system", "handheld gaming device"],
            [
                ("rrect", "body", (0.08, 0.30, 0.92, 0.72)),
                ("rect", "dark", (0.30, 0.36, 0.70, 0.66)),
                ("ellipse", "trim", (0.14, 0.44, 0.24, 0.54)),
                ("ellipse", "trim", (0.76, 0.44, 0.86, 0.54)),
            ],
        ),
    },
}
CATEGORIES = list(TYPES)
