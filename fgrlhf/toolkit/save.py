"""Atomic model folders: written beside the target, then renamed into place; and the
portable form of what a checkpoint's JSON records (data paths, configs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fgrlhf.paths import PROJECT_ROOT

# Written last into a folder being saved: its presence proves the folder is whole.
COMPLETE_MARKER = ".complete"


def atomic_save_dir(directory: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a fresh temporary folder, then swap it in for
    ``directory``. A crash while writing leaves the previous checkpoint untouched (only a
    ``.tmp`` folder, removed by the next save). The swap is two renames; a crash between
    them leaves ``directory.old`` (the previous folder) and ``directory.tmp`` (the new one,
    marked complete), which ``intact_dir`` finds."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    write(tmp)
    (tmp / COMPLETE_MARKER).write_text("")
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


def save_model_dir(directory: str | Path, model, tokenizer=None, metadata: Mapping[str, Any] | None = None,
                   extra: Callable[[Path], None] | None = None) -> Path:
    """A Hugging Face model folder, atomically: ``model.save_pretrained`` (safetensors),
    the tokenizer, each ``metadata`` entry as a JSON file (file name → content), then
    ``extra(tmp)`` for anything else the caller writes into the same folder."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for name, content in (metadata or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=1))
        if extra is not None:
            extra(tmp)

    return atomic_save_dir(directory, write)


def intact_dir(directory: str | Path) -> Path | None:
    """The newest whole copy of a folder written by ``atomic_save_dir``: the folder itself,
    else (a swap cut short between its two renames) the complete new ``.tmp`` or the previous
    ``.old``; ``None`` if there is none."""
    directory = Path(directory)
    if directory.is_dir():
        return directory
    tmp = directory.with_name(directory.name + ".tmp")
    if (tmp / COMPLETE_MARKER).is_file():
        return tmp
    old = directory.with_name(directory.name + ".old")
    return old if old.is_dir() else None


def portable_path(path: str | Path) -> str:
    """``path`` as a checkpoint records it: relative to the project root when it lies under
    it (the bundled data), so the record reads the same on every machine; else absolute."""
    source = Path(path).resolve()
    return str(source.relative_to(PROJECT_ROOT)) if source.is_relative_to(PROJECT_ROOT) else str(source)


def plain_config(node) -> dict[str, Any]:
    """A config dataclass or OmegaConf node as a plain dict, for a checkpoint's JSON record."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else asdict(node)  # type: ignore[return-value]


def save_or_rescue(directory: str | Path, save: Callable[[Path], Any], app: str) -> Path:
    """``save(directory)``; when that fails to write (``OSError``: read-only, full disk, a
    file in the way), ``save`` into a fresh ``$TMPDIR/fgrlhf-rescue-<app>-<time>/`` instead, so
    that what a run produced is never lost, and raise an ``OutputError`` naming both folders."""
    import os
    import tempfile
    import time

    from fgrlhf.errors import OutputError

    directory = Path(directory)
    try:
        save(directory)
        return directory
    except OSError as err:
        reason = err.strerror or str(err)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        rescue = Path(tempfile.gettempdir()) / f"fgrlhf-rescue-{app.removeprefix('fgrlhf-')}-{stamp}-{os.getpid()}"
        try:
            save(rescue)
        except OSError as second:
            raise OutputError(f"could not write {directory} ({reason}), nor the rescue copy {rescue} "
                              f"({second.strerror or second}): the result is lost") from err
        raise OutputError(f"could not write {directory} ({reason}); the result was saved to {rescue} instead: "
                          f"move it there by hand (e.g. mv {rescue} {directory})") from err
