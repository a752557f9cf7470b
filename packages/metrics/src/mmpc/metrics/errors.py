"""Errors shared by the model-backed metrics."""

from __future__ import annotations


class MissingWeightsError(RuntimeError):
    """A metric's backbone weights cannot be loaded here.

    The message is one line: which weights, and how to provide them (a local folder or a path in
    the config). Metrics never fall back to randomly initialised weights.
    """


class ImageReadError(ValueError):
    """An image file is missing, truncated or not decodable; the message names the file."""
