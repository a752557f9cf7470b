"""The one locator of the YAML configs that ship with ``mmpc-apps``.

The configs live in the checkout as ``apps/configs/<kind>/<name>.yaml``; the wheel carries the
same folder as package data, ``mmpc/apps/configs`` (hatch ``force-include``). Docs, YAMLs and
users name a config by its checkout path (``apps/configs/grpo/demo_i2t.yaml``), so
:func:`find_config` takes that spelling and finds the file from a checkout, from an installed
wheel, or from anywhere in between.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path, PurePosixPath

__all__ = ["CHECKOUT_PREFIX", "find_config", "shipped_configs"]

#: How the configs folder is named in docs and YAMLs: a path from the checkout's root.
CHECKOUT_PREFIX = PurePosixPath("apps/configs")


def shipped_configs(relative: str | Path = "") -> Path | None:
    """``<configs>/<relative>`` of the installed package, if it exists.

    The wheel's package data (``mmpc/apps/configs``) is tried first, then the checkout's
    ``apps/configs`` that an editable install points into.

    Args:
        relative: a file or folder below the configs folder, e.g. ``"grpo"`` or
            ``"bench/demo.yaml"``; empty for the folder itself.
    """
    package = Path(str(resources.files("mmpc.apps")))
    for root in (package / "configs", package.parents[2] / "configs"):  # wheel, then checkout
        path = root / relative
        if root.is_dir() and path.exists():
            return path
    return None


def find_config(path: str | Path) -> Path | None:
    """A config named as the docs name it: as given (absolute, or from the working folder), else
    the shipped copy of a path below ``apps/configs/``; None when neither exists.

    Args:
        path: e.g. ``"apps/configs/bench/demo.yaml"`` or ``"/abs/my.yaml"``.
    """
    given = Path(path)
    if given.exists():
        return given
    if given.is_absolute():
        return None
    try:
        relative = PurePosixPath(given.as_posix()).relative_to(CHECKOUT_PREFIX)
    except ValueError:
        return None
    return shipped_configs(relative)
