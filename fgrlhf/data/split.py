"""Splits by question, with a fixed seed, recorded to a file next to what used them.

All four predictions of a question, and its feedback, always fall in the same part: a
reward model is never evaluated on a question whose other answers it trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

R = TypeVar("R", bound="JsonRecord")


class JsonRecord:
    """A dataclass kept as one indented JSON object in a file (a split, next to what used it)."""

    def save(self, path: str | Path) -> None:
        """Write the fields to ``path`` (parent folders created)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            json.dump(asdict(self), f, indent=1)  # type: ignore[call-overload]

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        """The record ``save`` wrote to ``path``; a file that is missing, unreadable, cut short
        or lacks a field is a ``DataError`` naming it (and the field)."""
        from dataclasses import MISSING, fields

        from fgrlhf.data.errors import DataError
        from fgrlhf.data.files import read_json_object

        data = read_json_object(path)
        for f in fields(cls):  # type: ignore[arg-type]
            required = f.default is MISSING and f.default_factory is MISSING
            if required and f.name not in data:
                raise DataError(path, None, f.name, f"missing (not a {cls.__name__} file?)")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


@dataclass
class QuestionSplit(JsonRecord):
    """Indices (into the feedback file's records) of each part, and how they were drawn."""

    train: list[int]
    dev: list[int]
    test: list[int]
    seed: int
    source: str  # the feedback file the indices refer to
    fingerprint: str  # hash of the questions, so a split is never applied to another file


def questions_fingerprint(questions: list[str]) -> str:
    return hashlib.sha256("\n".join(questions).encode()).hexdigest()[:16]


def split_by_question(questions: list[str], dev: float | int = 40, test: float | int = 60,
                      seed: int = 0, source: str = "") -> QuestionSplit:
    """Shuffle question indices with ``seed``; the first ``test`` go to test, the next ``dev``
    to dev, the rest to train. ``dev``/``test`` are counts, or fractions when below 1."""
    n = len(questions)
    n_dev = round(dev * n) if dev < 1 else int(dev)
    n_test = round(test * n) if test < 1 else int(test)
    if n_dev + n_test >= n:
        from fgrlhf.errors import ConfigError

        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}split.dev_questions={dev} and split.test_questions={test}: dev {n_dev} + "
                          f"test {n_test} leave no training question out of {n}; lower them")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return QuestionSplit(
        train=sorted(order[n_test + n_dev :]),
        dev=sorted(order[n_test : n_test + n_dev]),
        test=sorted(order[:n_test]),
        seed=seed,
        source=str(source),
        fingerprint=questions_fingerprint(questions),
    )
