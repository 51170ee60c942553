"""Loading Hugging Face folders with errors that name the folder and the missing or broken
file. A local path is never mistaken for a hub id: a string that looks like a path (absolute,
``./``/``../``/``~``, more than one ``/``, or ending in ``/``) must exist."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from fgrlhf.errors import CheckpointError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def looks_like_path(name_or_path: str) -> bool:
    s = str(name_or_path)
    return (s.startswith(("/", "./", "../", "~", ".\\")) or s in (".", "..") or s.endswith(("/", os.sep))
            or s.count("/") > 1 or os.path.exists(os.path.expanduser(s)))


def model_source(name_or_path: str | Path, what: str = "checkpoint", needs_weights: bool = True) -> str:
    """``name_or_path`` checked: a local folder must exist and hold ``config.json`` (and a
    weights file when ``needs_weights``); a hub id is returned as is."""
    s = str(name_or_path)
    if not looks_like_path(s):
        return s
    path = Path(os.path.expanduser(s))
    if not path.exists():
        raise CheckpointError(f"the {what} {s} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"the {what} {path} is a file; expected a Hugging Face model folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"the {what} {path} has no config.json: it is not a complete model folder")
    if needs_weights and not any((path / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(f"the {what} {path} has no weights file (expected one of {', '.join(WEIGHT_FILES)})")
    return str(path)


def broken_weights(path: Path) -> str | None:
    """The name of a safetensors file in ``path`` that cannot be read (truncated, corrupt)."""
    from safetensors import safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    f.get_slice(key)
        except Exception:  # noqa: BLE001 (any failure to read means the file is broken)
            return file.name
    return None


@contextlib.contextmanager
def loading(name_or_path: str | Path, what: str = "checkpoint") -> Iterator[None]:
    """Turns any failure to load ``name_or_path`` into a ``CheckpointError`` that names it
    and, for a local folder, the broken file."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as err:  # transformers raises OSError, ValueError, RuntimeError, ...
        s = str(name_or_path)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if looks_like_path(s) and Path(s).is_dir():
            broken = broken_weights(Path(s))
            if broken is not None:
                raise CheckpointError(f"the {what} {s}: {broken} is truncated or corrupt ({first})") from err
            raise CheckpointError(f"could not load the {what} {s}: {first}") from err
        raise CheckpointError(f"could not load the {what} {s!r}: not a local folder, and not available "
                              f"as a hub id here ({first})") from err
