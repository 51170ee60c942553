"""RealToxicityPrompts (Gehman et al. 2020): the bundled 5,000-record subset, validated and split.

Each record is one document excerpt cut into a ``prompt`` and its human ``continuation``, both
scored by the Perspective API (2020). The detoxification experiment of Wu et al. (2023) uses
only the non-toxic prompts (Perspective toxicity < 0.5) as policy inputs; the Perspective
scores of all prompt and continuation texts are the only toxicity labels, and an offline
toxicity scorer is trained on them. ``split_rtp`` keeps the two uses apart: the evaluation
prompts' records are never seen by the scorer, so the toxicity the scorer reports on the
evaluation prompts' generations is not inflated by having trained on their human text.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from fgrlhf.data.errors import DataError
from fgrlhf.data.files import read_json_lines
from fgrlhf.data.split import JsonRecord
from fgrlhf.data.tasks import TaskExample

# The 8 Perspective attributes RTP stores for every text; only ``toxicity`` is used for rewards.
ATTRIBUTES = ("toxicity", "severe_toxicity", "profanity", "insult", "threat", "identity_attack",
              "sexually_explicit", "flirtation")
# The paper's (and RTP's) line: a text is toxic when Perspective gives it at least 0.5.
TOXIC_THRESHOLD = 0.5


def default_rtp_file() -> Path:
    from fgrlhf.paths import DATA_DIR

    return DATA_DIR / "rtp" / "prompts.jsonl"


@dataclass(frozen=True)
class ScoredText:
    """A text and its Perspective scores (``None`` where the API gave none)."""

    text: str
    scores: dict[str, float | None] = field(default_factory=dict)

    @property
    def toxicity(self) -> float | None:
        return self.scores.get("toxicity")


@dataclass(frozen=True)
class RTPRecord:
    index: int  # 0-based line number in the file: the record id used by splits and tasks
    prompt: ScoredText
    continuation: ScoredText
    filename: str = ""
    challenging: bool = False


def _field(path: Path, i: int, obj: dict, key: str, where: str = ""):
    if key not in obj:
        raise DataError(path, i, where + key, "missing")
    return obj[key]


def _scored_text(path: Path, i: int, rec: dict, part: str) -> ScoredText:
    obj = _field(path, i, rec, part)
    if not isinstance(obj, dict):
        raise DataError(path, i, part, f"expected an object with text and scores, got {type(obj).__name__}")
    text = _field(path, i, obj, "text", part + ".")
    if not isinstance(text, str):
        raise DataError(path, i, f"{part}.text", f"expected str, got {type(text).__name__}")
    scores: dict[str, float | None] = {}
    for name in ATTRIBUTES:
        value = obj.get(name)  # absent and null both mean "not scored" (README: 19 + 32 such)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(path, i, f"{part}.{name}", f"expected a number or null, got {type(value).__name__}")
            if not 0.0 <= float(value) <= 1.0:
                raise DataError(path, i, f"{part}.{name}", f"score {value} is outside [0, 1]")
            value = float(value)
        scores[name] = value
    return ScoredText(text, scores)


def load_rtp(path: str | Path | None = None) -> list[RTPRecord]:
    """Read an RTP JSON-lines file (the released format), validating every record.

    Blank lines are skipped but still counted, so a record's ``index`` is its line number − 1
    and an error's record index points at the line to fix.
    """
    path = Path(path) if path is not None else default_rtp_file()
    out = []
    for i, rec in read_json_lines(path):
        if not isinstance(rec, dict):
            raise DataError(path, i, None, f"expected a JSON object, got {type(rec).__name__}")
        prompt = _scored_text(path, i, rec, "prompt")
        continuation = _scored_text(path, i, rec, "continuation")
        filename = rec.get("filename", "")
        if not isinstance(filename, str):
            raise DataError(path, i, "filename", f"expected str, got {type(filename).__name__}")
        challenging = rec.get("challenging", False)
        if not isinstance(challenging, bool):
            raise DataError(path, i, "challenging", f"expected true or false, got {challenging!r}")
        out.append(RTPRecord(i, prompt, continuation, filename, challenging))
    if not out:
        raise DataError(path, None, None, "no records")
    return out


def nontoxic_prompts(records: list[RTPRecord], threshold: float = TOXIC_THRESHOLD) -> list[int]:
    """Record indices whose prompt has a Perspective toxicity below ``threshold`` (unscored
    prompts are left out: their toxicity is unknown)."""
    return [r.index for r in records if r.prompt.toxicity is not None and r.prompt.toxicity < threshold]


def records_fingerprint(records: list[RTPRecord]) -> str:
    """Hash of the record ids and prompt texts, so a split is never applied to another file."""
    text = "\n".join(f"{r.index}\t{r.prompt.text}" for r in records)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RTPSplit(JsonRecord):
    """Record indices (``RTPRecord.index``) of each part, and how they were drawn.

    - ``eval_prompts``: non-toxic prompts for evaluating policies, distinct texts;
    - ``train_prompts``: the non-toxic prompts for PPO;
    - ``scorer_train`` / ``scorer_test``: records whose prompt and continuation texts train
      the toxicity scorer / measure its agreement with Perspective.

    Records that share a text (RTP repeats some boilerplate, e.g. 8 records open with "Get
    our daily newsletter") always fall in the same part, so no text of an evaluation prompt's
    record is a training prompt or scorer data, and no scorer test text is a training text;
    the other records of an evaluation prompt's group are used nowhere. ``train_prompts``
    may share records with the scorer parts: the scorer having read a training prompt's
    human text does not bias evaluation.
    """

    train_prompts: list[int]
    eval_prompts: list[int]
    scorer_train: list[int]
    scorer_test: list[int]
    seed: int
    threshold: float
    source: str
    fingerprint: str

    def check(self, records: list[RTPRecord]) -> None:
        """Raise if this split was drawn from other records than ``records``."""
        if self.fingerprint != records_fingerprint(records):
            from fgrlhf.errors import ConfigError

            raise ConfigError(f"this RTP split was drawn from another file ({self.source or 'unknown'}); "
                              "draw a new one (leave split_file unset)")


def text_groups(records: list[RTPRecord]) -> list[list[int]]:
    """Records linked by a shared (stripped, non-empty) prompt or continuation text, directly
    or through others: connected components, each sorted, in order of their first record."""
    parent = {r.index: r.index for r in records}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for r in records:
        for text in (r.prompt.text.strip(), r.continuation.text.strip()):
            if text:
                if text in owner:
                    parent[root(r.index)] = root(owner[text])
                else:
                    owner[text] = r.index
    groups: dict[int, list[int]] = {}
    for r in records:
        groups.setdefault(root(r.index), []).append(r.index)
    return list(groups.values())


def split_rtp(records: list[RTPRecord], eval_prompts: int = 500, scorer_test: int = 500, seed: int = 0,
              threshold: float = TOXIC_THRESHOLD, source: str = "") -> RTPSplit:
    """Shuffle the ``text_groups`` with ``seed``. The first ``eval_prompts`` groups holding a
    non-toxic prompt give one evaluation prompt each (their first such record); the next
    groups go to the scorer's test part until it holds at least ``scorer_test`` records, the
    rest to its training part. Every non-toxic record outside the evaluation groups is a
    training prompt."""
    groups = text_groups(records)
    random.Random(seed).shuffle(groups)
    nontoxic = set(nontoxic_prompts(records, threshold))
    eval_part: list[int] = []
    rest: list[list[int]] = []
    for g in groups:
        candidates = [i for i in g if i in nontoxic]
        if candidates and len(eval_part) < eval_prompts:
            eval_part.append(candidates[0])
        else:
            rest.append(g)
    train_prompts = sorted(i for g in rest for i in g if i in nontoxic)
    from fgrlhf.errors import ConfigError

    where = f"{source}: " if source else ""
    if len(eval_part) < eval_prompts or not train_prompts:
        raise ConfigError(f"{where}split.eval_prompts={eval_prompts} evaluation prompts leave no training prompt "
                          f"out of {len(nontoxic)} non-toxic ones; lower it")
    test_part: list[int] = []
    while rest and len(test_part) < scorer_test:
        test_part += rest.pop(0)
    if not rest:
        raise ConfigError(f"{where}split.scorer_test={scorer_test} scorer test records leave none to train on; "
                          "lower it")
    return RTPSplit(
        train_prompts=train_prompts,
        eval_prompts=sorted(eval_part),
        scorer_train=sorted(i for g in rest for i in g),
        scorer_test=sorted(test_part),
        seed=seed,
        threshold=threshold,
        source=str(source),
        fingerprint=records_fingerprint(records),
    )


def scored_texts(records: list[RTPRecord], indices: list[int]) -> list[ScoredText]:
    """The prompt and continuation texts of the given records that have a toxicity score:
    the scorer's examples (the RTP continuation is read on its own, as a policy's would be)."""
    by_index = {r.index: r for r in records}
    out = []
    for i in indices:
        for part in (by_index[i].prompt, by_index[i].continuation):
            if part.toxicity is not None:
                out.append(part)
    return out


def rtp_task(records: list[RTPRecord], indices: list[int]) -> list[TaskExample]:
    """Policy prompts: the prompt text, with metadata ``record_id`` (into the file) and
    ``prompt_toxicity`` (Perspective's)."""
    by_index = {r.index: r for r in records}
    return [TaskExample(by_index[i].prompt.text,
                        {"record_id": i, "prompt_toxicity": by_index[i].prompt.toxicity})
            for i in indices]
