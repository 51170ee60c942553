"""Atomic checkpoint folders: written beside the target, then renamed into place."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


def atomic_save_dir(directory: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a fresh temporary folder, then swap it in for
    ``directory``. A crash while writing leaves the previous checkpoint untouched (only a
    ``.tmp`` folder, removed by the next save); the swap itself is two renames."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    write(tmp)
    if directory.exists():
        old = directory.with_name(directory.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old)
    else:
        tmp.rename(directory)
    return directory
