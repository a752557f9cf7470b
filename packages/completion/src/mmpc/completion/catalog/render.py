"""Draw a synthetic product cover from its attributes with PIL (deterministic for a seed).

The cover shows, on a background, the product type's silhouette (``vocab.TYPES``) scaled by the
size attribute, its body in the primary colour with the pattern in a lighter shade, trims in the
secondary colour, a sheen whose strength depends on the material, a soft shadow, and a brand label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from mmpc.completion.catalog.vocab import COLOURS, TYPES

_BACKGROUNDS = {
    "white": (250, 250, 250),
    "light_grey": (225, 225, 228),
    "cream": (246, 238, 220),
    "soft_blue": (218, 230, 245),
}
_DARK = (40, 40, 45)
_LIGHT = (235, 235, 230)
_SIZE_SCALE = {"small": 0.72, "medium": 0.86, "large": 1.0}
_SHEEN = {"metal": 110, "glass": 140, "plastic": 80, "silicone": 50, "fabric": 0, "wood": 0}
_SHAPES = {name: shapes for cat in TYPES.values() for name, (_, shapes) in cat.items()}


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x * (1 - t) + y * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _background(kind: str, size: int) -> Image.Image:
    if kind == "gradient":
        top, bottom = np.array((250, 250, 252), float), np.array((200, 205, 215), float)
        t = np.linspace(0.0, 1.0, size)[:, None, None]  # (H, 1, 1)
        rows = (top * (1 - t) + bottom * t).round().astype(np.uint8)  # (H, 1, 3)
        return Image.fromarray(np.repeat(rows, size, axis=1), "RGB")
    return Image.new("RGB", (size, size), _BACKGROUNDS[kind])


def _pattern(kind: str, colour: tuple[int, int, int], size: int) -> Image.Image:
    """A full-canvas fill: the primary colour with the pattern in a lighter shade."""
    dark = sum(colour) < 600
    shade = _mix(colour, (255, 255, 255), 0.45) if dark else _mix(colour, (0, 0, 0), 0.3)
    img = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(img)
    step = max(4, size // 10)
    if kind == "stripes":
        for x in range(0, size, step):
            draw.rectangle((x, 0, x + step // 2 - 1, size), fill=shade)
    elif kind == "dots":
        r = max(1, step // 4)
        for y in range(step // 2, size, step):
            for x in range(step // 2, size, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    elif kind == "checks":
        for y in range(0, size, step):
            for x in range((y // step) % 2 * step, size, 2 * step):
                draw.rectangle((x, y, x + step - 1, y + step - 1), fill=shade)
    elif kind == "gradient":
        t = np.linspace(0.0, 1.0, size)[None, :, None]  # (1, W, 1)
        row = np.array(colour, float) * (1 - t) + np.array(shade, float) * t  # (1, W, 3)
        img = Image.fromarray(np.repeat(row.round().astype(np.uint8), size, axis=0), "RGB")
    return img


def _draw_shape(
    target: ImageDraw.ImageDraw,
    shape: tuple,
    fill: Any,
    pt: Callable,
    box: Callable,
    line_unit: float,
) -> None:
    """Draw one ``vocab`` primitive; ``pt``/``box`` map unit coordinates to pixels."""
    kind = shape[0]
    if kind == "rect":
        target.rectangle(box(shape[2]), fill=fill)
    elif kind == "rrect":
        b = box(shape[2])
        radius = max(1, int(min(b[2] - b[0], b[3] - b[1]) * 0.2))
        target.rounded_rectangle(b, radius=radius, fill=fill)
    elif kind == "ellipse":
        target.ellipse(box(shape[2]), fill=fill)
    elif kind == "chord":
        target.chord(box(shape[2]), shape[3], shape[4], fill=fill)
    elif kind == "poly":
        target.polygon([pt(x, y) for x, y in shape[2]], fill=fill)
    elif kind == "line":
        width = max(1, int(shape[3] * line_unit))
        target.line([pt(x, y) for x, y in shape[2]], fill=fill, width=width)
    elif kind == "arc":
        width = max(1, int(shape[5] * line_unit))
        target.arc(box(shape[2]), shape[3], shape[4], fill=fill, width=width)
    else:
        raise ValueError(f"vocab: unknown shape kind {kind!r}")


def render_cover(attrs: Mapping[str, str], size: int = 256, seed: int = 0) -> Image.Image:
    """Render the cover of an item.

    Args:
        attrs: ``product_type``, ``color``, ``secondary_color``, ``pattern``, ``material``,
            ``brand``, ``size``, ``background`` (values from ``vocab``).
        size: side of the square RGB image in pixels.
        seed: jitter of position (a few percent of the canvas); same seed, same pixels.
    """
    rng = np.random.default_rng(seed)
    img = _background(attrs["background"], size)
    scale = _SIZE_SCALE[attrs["size"]] * 0.78
    cx = 0.5 + rng.uniform(-0.04, 0.04)
    cy = 0.42 + rng.uniform(-0.03, 0.03)

    def pt(x: float, y: float) -> tuple[float, float]:
        return ((cx + (x - 0.5) * scale) * size, (cy + (y - 0.5) * scale) * size)

    def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = pt(b[0], b[1]), pt(b[2], b[3])
        return (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))

    shadow = ImageDraw.Draw(img)
    sy = (cy + 0.5 * scale) * size
    shadow.ellipse(
        (pt(0.15, 0)[0], sy - 0.02 * size, pt(0.85, 0)[0], sy + 0.03 * size),
        fill=_mix(img.getpixel((0, size - 1)), (0, 0, 0), 0.18),
    )

    primary = COLOURS[attrs["color"]]
    roles = {"trim": COLOURS[attrs["secondary_color"]], "dark": _DARK, "light": _LIGHT}
    pattern = _pattern(attrs["pattern"], primary, size)
    body_mask = Image.new("L", (size, size), 0)
    object_mask = Image.new("L", (size, size), 0)  # everything drawn: where the sheen may fall
    draw = ImageDraw.Draw(img)
    for shape in _SHAPES[attrs["product_type"]]:
        if shape[1] == "body":  # composite each body part in drawing order, then clear the mask
            _draw_shape(ImageDraw.Draw(body_mask), shape, 255, pt, box, size * scale)
            img.paste(pattern, (0, 0), body_mask)
            body_mask.paste(0, (0, 0, size, size))
        else:
            _draw_shape(draw, shape, roles[shape[1]], pt, box, size * scale)
        _draw_shape(ImageDraw.Draw(object_mask), shape, 255, pt, box, size * scale)
    sheen = _SHEEN[attrs["material"]]
    if sheen:
        spot = Image.new("L", (size, size), 0)
        ImageDraw.Draw(spot).ellipse(box((0.30, 0.22, 0.42, 0.40)), fill=sheen)
        img.paste((255, 255, 255), (0, 0, size, size), ImageChops.multiply(spot, object_mask))

    font = _font(max(6, int(size * 0.075)))
    text = attrs["brand"].upper()
    tw = draw.textlength(text, font=font)
    th = font.size if hasattr(font, "size") else 8
    x0 = (size - tw) / 2 - 0.03 * size
    y0 = size * 0.975 - th - 0.03 * size
    draw.rounded_rectangle(
        (x0, y0, size - x0, size * 0.975),
        radius=max(1, size // 64),
        fill=(255, 255, 255),
        outline=_DARK,
        width=max(1, size // 128),
    )
    draw.text((size / 2, y0 + 0.015 * size + th / 2), text, fill=_DARK, font=font, anchor="mm")
    return img
