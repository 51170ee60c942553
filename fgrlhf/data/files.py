"""Reading the files users supply: every failure is a ``DataError`` naming the file (and the
record or line where there is one): missing, a folder, not UTF-8, empty, not JSON, no records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fgrlhf.data.errors import DataError


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "no such file")
    if path.is_dir():
        raise DataError(path, None, None, "is a folder; expected a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(path, None, None, f"not UTF-8 text: byte {err.start} (line {line}) is "
                                          f"{raw[err.start:err.start + 1]!r}") from None
    if not text.strip():
        raise DataError(path, None, None, "the file is empty")
    return text


def read_json_list(path: str | Path) -> list[Any]:
    """A JSON file holding a non-empty list of records."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, None, None, f"not valid JSON (truncated?): {err}") from None
    if not isinstance(data, list):
        raise DataError(path, None, None, f"expected a JSON list of records, got {type(data).__name__}")
    if not data:
        raise DataError(path, None, None, "the list of records is empty")
    return data


def read_json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line index, record)`` for each non-blank line of a JSON-lines file; blank lines
    still count, so an error's record index is the line to fix (0-based)."""
    # Split on "\n" alone: JSON strings may hold other line separators (U+2028, \r).
    for i, line in enumerate(read_text(path).split("\n")):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, i, None, f"not valid JSON: {err}") from None


def read_json_object(path: str | Path, missing: str = "no such file") -> dict[str, Any]:
    """A JSON file holding one object (a summary, a record of how something was made);
    ``missing``: what to say when there is no such file (a ``MissingFileError``, which is
    also a ``FileNotFoundError``)."""
    from fgrlhf.data.errors import MissingFileError

    if not Path(path).exists():
        raise MissingFileError(path, missing)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(path, None, None, f"not valid JSON (truncated?): {err}") from None
    if not isinstance(data, dict):
        raise DataError(path, None, None, f"expected a JSON object, got {type(data).__name__}")
    return data
