"""User errors: mistakes in what a user asked for or supplied, reported as one clear line.

Every app's ``main`` runs its recipe through ``report_user_errors``: a ``UserError`` (a bad
setting, an unreadable file, a missing checkpoint piece, an output folder in use) ends the
process with ``<app>: error: <message>`` and exit code 2 instead of a chained traceback.
Anything else is a bug and keeps its traceback. ``HYDRA_FULL_ERROR=1`` or ``FGRLHF_DEBUG=1``
re-raise user errors too, with the full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake the user can fix: the message says what, where, and what is allowed."""


class ConfigError(UserError, ValueError):
    """A setting out of its range, of the wrong type, or inconsistent with another."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, incomplete, truncated, or does not fit this run."""


class OutputError(UserError, OSError):
    """An output folder that cannot be written, or is in use by another run."""


def debug_tracebacks() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("FGRLHF_DEBUG") == "1"


def report_user_errors(app: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; a ``UserError`` becomes one line on stderr and exit code 2."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return fn(*args, **kwargs)
    except (UserError, OmegaConfBaseException) as err:
        if debug_tracebacks():
            raise
        message = str(err).strip()
        if isinstance(err, OmegaConfBaseException):  # a type error while merging the schema
            message = message.splitlines()[0] if message else type(err).__name__
            message = f"invalid configuration: {message}"
        print(f"{app}: error: {message}", file=sys.stderr)
        print(f"{app}: (HYDRA_FULL_ERROR=1 shows the full traceback)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
