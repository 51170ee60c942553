"""QA-Feedback (Wu et al. 2023) in its original file formats.

``*_feedback.json`` (fine-grained feedback on ``prediction 1`` and 6 pairwise preferences
among the 4 predictions) and the prompt files (``train.json`` / ``dev.json`` /
``test.json``). The loaders accept the released files unchanged and reject a malformed one
with a ``DataError`` naming the file, the record index and the field.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fgrlhf.data.errors import DataError
from fgrlhf.data.files import read_json_list

RELEVANCE_ERRORS = ("Irrelevant", "Redundant", "Incoherent")
FACTUALITY_ERRORS = ("Wrong-Grounding", "Unverifiable")
MISSING_INFO_TYPES = ("Missing-Answer", "Missing-Major-Auxiliary", "Missing-Minor-Auxiliary")
NUM_PREDICTIONS = 4
# Order of the 6 preference entries: (first, second) prediction numbers, 1-based.
PREFERENCE_PAIRS = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def judged_pairs(preference: list[int]) -> list[tuple[int, int]]:
    """``(preferred, other)`` 0-based prediction indices of each judgement that is not a tie,
    in ``PREFERENCE_PAIRS`` order (``preference``: 1 the first wins, 2 the second, 0 tie)."""
    out = []
    for (a, b), judgement in zip(PREFERENCE_PAIRS, preference):
        if judgement == 1:
            out.append((a - 1, b - 1))
        elif judgement == 2:
            out.append((b - 1, a - 1))
    return out


def error_family(error_type: str) -> str:
    """``relevance`` or ``factuality``: the reward model an error type belongs to."""
    if error_type in RELEVANCE_ERRORS:
        return "relevance"
    if error_type in FACTUALITY_ERRORS:
        return "factuality"
    raise KeyError(error_type)


@dataclass(frozen=True)
class ErrorSpan:
    error_type: str
    start: int  # char offsets into ``prediction 1``, [start, end)
    end: int
    explanation: str = ""

    @property
    def family(self) -> str:
        return error_family(self.error_type)


@dataclass(frozen=True)
class MissingInfo:
    error_type: str
    passage_id: int  # 1-based
    # Index into the passage list [title, sentence_1, ...]: 1-based over sentences; the
    # released data also uses 0 a few times, which points at the title entry.
    sentence_ids: tuple[int, ...]


@dataclass
class Feedback:
    errors: list[ErrorSpan]
    missing_info: list[MissingInfo]
    corrected: str


@dataclass
class FeedbackExample:
    """One question: its passages, gold answer, 4 predictions, feedback and preferences."""

    index: int
    question: str
    passages: list[list[str]]  # each [title, sentence_1, sentence_2, ...]
    gold: str
    predictions: list[str]  # prediction 1 .. 4
    feedback: Feedback
    preference: list[int]  # 6 entries in PREFERENCE_PAIRS order: 1 first, 2 second, 0 tie
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptExample:
    index: int
    text: str  # the policy input
    question: str
    references: list[str]  # reference long-form answers (ROUGE)
    passages: list[dict[str, str]]


def _get(path: Path, i: int, rec: dict, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}{key}"
    if not isinstance(rec, dict):
        raise DataError(path, i, where.rstrip(".") or None, f"expected an object, got {type(rec).__name__}")
    if key not in rec:
        raise DataError(path, i, name, "missing")
    value = rec[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise DataError(path, i, name, f"expected {' or '.join(k.__name__ for k in kinds)}, "
                                       f"got {type(value).__name__}")
    return value


def _parse_errors(path: Path, i: int, raw: list, text: str) -> list[ErrorSpan]:
    spans = []
    for j, e in enumerate(raw):
        where = f"feedback.errors[{j}]."
        etype = _get(path, i, e, "error type", str, where)
        if etype not in RELEVANCE_ERRORS + FACTUALITY_ERRORS:
            raise DataError(path, i, where + "error type",
                            f"unknown error type {etype!r}; expected one of "
                            f"{', '.join(RELEVANCE_ERRORS + FACTUALITY_ERRORS)}")
        start = _get(path, i, e, "start", int, where)
        end = _get(path, i, e, "end", int, where)
        if not 0 <= start < end <= len(text):
            raise DataError(path, i, where + "start",
                            f"span [{start}, {end}) is out of range for prediction 1 ({len(text)} chars)")
        # Spans must cover whole words: they start on a word's first character and end
        # after a word's last one.
        if text[start].isspace() or (start > 0 and not text[start - 1].isspace()):
            raise DataError(path, i, where + "start", f"span [{start}, {end}) does not start on a word boundary")
        if text[end - 1].isspace() or (end < len(text) and not text[end].isspace()):
            raise DataError(path, i, where + "end", f"span [{start}, {end}) does not end on a word boundary")
        spans.append(ErrorSpan(etype, start, end, str(e.get("explanation", ""))))
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end and a.family != b.family:
            raise DataError(path, i, "feedback.errors",
                            f"{a.error_type} span [{a.start}, {a.end}) overlaps {b.error_type} span "
                            f"[{b.start}, {b.end}) of another category")
    return spans


def _parse_missing(path: Path, i: int, raw: list, passages: list[list[str]]) -> list[MissingInfo]:
    out = []
    for j, m in enumerate(raw):
        where = f"feedback.missing-info[{j}]."
        etype = _get(path, i, m, "error type", str, where)
        if etype not in MISSING_INFO_TYPES:
            raise DataError(path, i, where + "error type", f"unknown missing-info type {etype!r}")
        pid = _get(path, i, m, "passage_id", int, where)
        if not 1 <= pid <= len(passages):
            raise DataError(path, i, where + "passage_id", f"passage {pid} does not exist ({len(passages)} passages)")
        sids = _get(path, i, m, "sentence_id", list, where)
        n_sent = len(passages[pid - 1]) - 1
        for sid in sids:
            if not isinstance(sid, int) or isinstance(sid, bool) or not 0 <= sid <= n_sent:
                raise DataError(path, i, where + "sentence_id",
                                f"sentence {sid!r} does not exist in passage {pid} ({n_sent} sentences)")
        out.append(MissingInfo(etype, pid, tuple(sids)))
    return out


T = TypeVar("T")


def _load_records(path: str | Path, parse: Callable[[Path, int, Any], T]) -> list[T]:
    """``parse(path, i, record)`` of every record of the JSON list in ``path`` (a file that
    is missing, not UTF-8, empty, cut short or holds no records is a ``DataError`` naming it)."""
    path = Path(path)
    return [parse(path, i, rec) for i, rec in enumerate(read_json_list(path))]


def _parse_feedback(path: Path, i: int, rec: Any) -> FeedbackExample:
    question = _get(path, i, rec, "question", str)
    passages = _get(path, i, rec, "passages", list)
    for p, psg in enumerate(passages):
        if not isinstance(psg, list) or not psg or not all(isinstance(s, str) for s in psg):
            raise DataError(path, i, f"passages[{p}]", "expected a list [title, sentence, ...] of strings")
    gold = _get(path, i, rec, "gold", str)
    predictions = [_get(path, i, rec, f"prediction {k}", str) for k in range(1, NUM_PREDICTIONS + 1)]
    fb = _get(path, i, rec, "feedback", dict)
    errors = _parse_errors(path, i, _get(path, i, fb, "errors", list, "feedback."), predictions[0])
    missing = _parse_missing(path, i, _get(path, i, fb, "missing-info", list, "feedback."), passages)
    corrected = _get(path, i, fb, "corrected-prediction", str, "feedback.")
    pref = _get(path, i, rec, "preference", list)
    if len(pref) != len(PREFERENCE_PAIRS):
        raise DataError(path, i, "preference",
                        f"expected {len(PREFERENCE_PAIRS)} judgements (1v2, 1v3, 1v4, 2v3, 2v4, 3v4), got {len(pref)}")
    if any(p not in (0, 1, 2) or isinstance(p, bool) for p in pref):
        raise DataError(path, i, "preference", f"judgements must be 0 (tie), 1 or 2; got {pref}")
    known = {"question", "passages", "gold", "feedback", "preference",
             *(f"prediction {k}" for k in range(1, NUM_PREDICTIONS + 1))}
    extra = {k: v for k, v in rec.items() if k not in known}
    return FeedbackExample(i, question, passages, gold, predictions,
                           Feedback(errors, missing, corrected), list(pref), extra)


def load_feedback(path: str | Path) -> list[FeedbackExample]:
    """Read a ``*_feedback.json`` file, validating every record."""
    return _load_records(path, _parse_feedback)


def _parse_prompt(path: Path, i: int, rec: Any) -> PromptExample:
    text = _get(path, i, rec, "text", str)
    question = _get(path, i, rec, "question", str)
    raw_answer = _get(path, i, rec, "answer", (str, list))
    try:
        refs = json.loads(raw_answer) if isinstance(raw_answer, str) else raw_answer
    except json.JSONDecodeError as err:
        raise DataError(path, i, "answer", f"not a JSON-encoded list of answers: {err}") from err
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise DataError(path, i, "answer", "expected a list of reference answers (strings)")
    raw_passages = rec.get("passages", "[]")
    try:
        passages = ast.literal_eval(raw_passages) if isinstance(raw_passages, str) else raw_passages
    except (ValueError, SyntaxError) as err:
        raise DataError(path, i, "passages", f"not a Python-literal list of passages: {err}") from err
    if not isinstance(passages, list):
        raise DataError(path, i, "passages", "expected a list of passage records")
    return PromptExample(i, text, question, refs, passages)


def load_prompts(path: str | Path) -> list[PromptExample]:
    """Read a prompt file (``train.json`` / ``dev.json`` / ``test.json`` format)."""
    return _load_records(path, _parse_prompt)
