"""One error contract for every ``mmpc`` command (no torch import: ``--help`` stays fast).

A refused run ends with one stderr line ``mmpc <command>: <what> (<where>)`` and an exit code:

* 2: the user's input is wrong (:class:`~mmpc.metrics.errors.InputError`, e.g. a missing or
  wrong-kind path, a folder that is not a catalogue, a corrupt file, an unknown config key or a bad
  value, a value a module's constructor rejects, an output folder that cannot be created);
* 3: a resource the run needs is not on this machine
  (:class:`~mmpc.metrics.errors.MissingWeightsError`);
* 1: anything else, a bug, which keeps its traceback.

``MMPC_DEBUG=1`` prints the traceback of a refused run too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

from mmpc.metrics.errors import InputError, MissingWeightsError

__all__ = [
    "DEBUG_ENV",
    "EXIT_INPUT",
    "EXIT_RESOURCE",
    "Parser",
    "argument_message",
    "check_catalog_dir",
    "check_input_path",
    "check_output_dir",
    "rejected_option",
    "run_guarded",
]

EXIT_INPUT = 2
EXIT_RESOURCE = 3
DEBUG_ENV = "MMPC_DEBUG"

_PARSER_KEY = re.compile(r'Parser key "([^"]+)":\s*(.*)')
_ARGPARSE_KEY = re.compile(r"argument (-[^:\s]+(?:/-[^:\s]+)?): (.*)")


class Parser(argparse.ArgumentParser):
    """``argparse`` parser whose errors are raised (and so reported in one line), not printed."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def argument_message(err: argparse.ArgumentError) -> str:
    """One line for an argparse / jsonargparse error, ending with the option it is about.

    jsonargparse spreads a message over lines (``Parser key "a.b":`` then the reason); they are
    joined and the key is moved to the end as ``(--a.b)``.
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    head = lines[0] if lines else "invalid arguments"
    if match := _PARSER_KEY.match(head):
        key, reason = match.group(1), match.group(2) or (lines[1] if len(lines) > 1 else "")
        return f"invalid value: {reason.removeprefix('- ')} (--{key})"
    if match := _ARGPARSE_KEY.match(head):
        return f"{match.group(2)} ({match.group(1)})"
    if head.startswith("unrecognized arguments: "):
        unknown = head.removeprefix("unrecognized arguments: ")
        return f"unknown option(s) {unknown} ({unknown.split()[0].split('=')[0]})"
    if head.startswith("Problems parsing config"):
        reason = " ".join(lines).removeprefix("Problems parsing config: ")
        return f"malformed config: {reason} (--config)"
    return " ".join(lines)


def rejected_option(message: str, keys: Iterable[str]) -> str | None:
    """The config key a constructor's ``ValueError`` is about, found by its name in the message.

    A module that validates its arguments says which one it rejects (``group_size must be >= 2,
    got 0``); the key whose last part is named there (``model.group_size``) is the user's option.
    The longest such name wins (``max_new_tokens`` over ``tokens``); a message naming no key is
    not taken for the user's input.

    Args:
        message: the error's text.
        keys: the dotted keys of the parsed config, e.g. ``"model.group_size"``.

    Returns:
        The key, or None when the message names none.
    """
    named = [
        key
        for key in keys
        if re.search(rf"(?<![\w.]){re.escape(key.rsplit('.', 1)[-1])}(?!\w)", message)
    ]
    if not named:
        return None
    return max(named, key=lambda key: (len(key.rsplit(".", 1)[-1]), -len(key)))


def _refuse(prog: str, message: str, code: int) -> int:
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exc()
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    return code


def run_guarded(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body()`` under the error contract; returns the process exit code.

    Args:
        prog: the command in messages, e.g. ``"mmpc recsys"``.
        body: the command's work; returns an exit code (None means 0).

    Returns:
        ``body``'s code, 2 for an input or argument error, 3 for missing weights; ``--help``'s
        ``SystemExit`` code passes through. Other exceptions propagate with their traceback.
    """
    try:
        code = body()
    except MissingWeightsError as err:
        return _refuse(prog, str(err), EXIT_RESOURCE)
    except InputError as err:
        return _refuse(prog, str(err), EXIT_INPUT)
    except argparse.ArgumentError as err:
        return _refuse(prog, argument_message(err), EXIT_INPUT)
    except SystemExit as err:
        if isinstance(err.code, str):
            return _refuse(prog, err.code, EXIT_INPUT)
        return int(err.code or 0)
    return int(code or 0)


def check_input_path(path: str | Path, what: str, kind: str = "dir") -> Path:
    """``path`` as a Path if it exists and is a folder (``kind="dir"``) or a file (``"file"``).

    Raises:
        InputError: ``path`` is missing or of the other kind; the message says ``what`` it is.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} does not exist", path)
    if kind == "dir" and not path.is_dir():
        raise InputError(f"{what} is a file, not a folder", path)
    if kind == "file" and not path.is_file():
        raise InputError(f"{what} is a folder, not a file", path)
    return path


def check_catalog_dir(path: str | Path, what: str = "folder") -> Path:
    """``path`` if it is a folder holding a catalogue's ``manifest.json`` (contents are checked
    when the catalogue is opened).

    Raises:
        InputError: ``path`` is missing, a file, or a folder without ``manifest.json``.
    """
    path = check_input_path(path, what)
    if not (path / "manifest.json").is_file():
        raise InputError(f"{what} is not a catalogue: manifest.json is missing", path)
    return path


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """``path`` as a Path if it is a folder or can be created as one; nothing is created.

    Raises:
        InputError: ``path`` is a file, lies below a file, or its nearest existing folder is not
            writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} is a file, not a folder", path)
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create {what}: {parent} is a file", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create {what}: {parent} is not writable", path)
    return path
