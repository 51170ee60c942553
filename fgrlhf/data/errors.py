"""One error type for bad input data, naming the file, the record and the field."""

from __future__ import annotations

from pathlib import Path

from fgrlhf.errors import UserError


class DataError(UserError, ValueError):
    """Malformed input: ``file``, ``record`` (0-based index) and ``field`` say where. A user
    error: every app reports it as one line."""

    def __init__(self, file: str | Path, record: int | None, field: str | None, message: str) -> None:
        self.file = str(file)
        self.record = record
        self.field = field
        where = self.file
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class MissingFileError(DataError, FileNotFoundError):
    """An input file that does not exist (also a ``FileNotFoundError``)."""

    def __init__(self, file: str | Path, message: str = "no such file") -> None:
        super().__init__(file, None, None, message)
