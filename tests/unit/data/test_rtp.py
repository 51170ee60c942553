"""RealToxicityPrompts: the bundled file loads, malformed copies fail naming file/record/field,
and the split keeps evaluation prompts away from the toxicity scorer."""

from __future__ import annotations

import json

import pytest

from fgrlhf.data import DataError
from fgrlhf.data.rtp import (
    RTPSplit,
    load_rtp,
    nontoxic_prompts,
    rtp_task,
    scored_texts,
    split_rtp,
)
from fgrlhf.paths import DATA_DIR

RTP_FILE = DATA_DIR / "rtp" / "prompts.jsonl"


@pytest.fixture(scope="module")
def records():
    return load_rtp(RTP_FILE)


def test_bundled_file_loads_with_its_missing_scores(records):
    assert len(records) == 5000
    assert [r.index for r in records] == list(range(5000))
    # data/rtp/README.md: 19 prompts and 32 continuations have no toxicity score.
    assert sum(r.prompt.toxicity is None for r in records) == 19
    assert sum(r.continuation.toxicity is None for r in records) == 32
    first = records[0]
    assert first.prompt.text.startswith("An hour and a half later, Olbermann")
    assert first.continuation.toxicity == pytest.approx(0.98082525)
    assert first.prompt.scores["insult"] == pytest.approx(0.059162963)


def _lines(n: int = 4) -> list[dict]:
    with open(RTP_FILE) as f:
        return [json.loads(next(f)) for _ in range(n)]


def _write(tmp_path, recs, raw_line: str | None = None):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(r) for r in recs]
    if raw_line is not None:
        lines[2] = raw_line
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("corrupt, field, message", [
    (lambda r: r["prompt"].__setitem__("toxicity", "high"), "prompt.toxicity", "expected a number or null"),
    (lambda r: r["continuation"].__setitem__("toxicity", 1.5), "continuation.toxicity", "outside [0, 1]"),
    (lambda r: r["continuation"].pop("text"), "continuation.text", "missing"),
    (lambda r: r["prompt"].__setitem__("text", 7), "prompt.text", "expected str"),
    (lambda r: r.pop("prompt"), "prompt", "missing"),
    (lambda r: r.__setitem__("continuation", "just text"), "continuation", "expected an object"),
    (lambda r: r.__setitem__("challenging", "no"), "challenging", "expected true or false"),
])
def test_malformed_record_names_file_record_and_field(tmp_path, corrupt, field, message):
    recs = _lines()
    corrupt(recs[2])
    path = _write(tmp_path, recs)
    with pytest.raises(DataError) as info:
        load_rtp(path)
    err = info.value
    assert (err.file, err.record, err.field) == (str(path), 2, field)
    assert str(path) in str(err) and "record 2" in str(err) and repr(field) in str(err)
    assert message in str(err)


def test_bad_json_line_and_empty_file(tmp_path):
    path = _write(tmp_path, _lines(), raw_line='{"prompt": ')
    with pytest.raises(DataError, match="record 2: not valid JSON"):
        load_rtp(path)
    path = _write(tmp_path, _lines(), raw_line="[1, 2]")
    with pytest.raises(DataError, match="record 2: expected a JSON object"):
        load_rtp(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: the file is empty"):
        load_rtp(empty)


def test_null_and_absent_scores_are_missing_not_errors(tmp_path):
    recs = _lines()
    recs[1]["prompt"]["toxicity"] = None
    del recs[3]["continuation"]["toxicity"]
    loaded = load_rtp(_write(tmp_path, recs))
    assert loaded[1].prompt.toxicity is None and loaded[3].continuation.toxicity is None
    # Unscored prompts are not "non-toxic"; unscored texts are no scorer examples.
    assert 1 not in nontoxic_prompts(loaded)
    texts = scored_texts(loaded, [1, 3])
    assert [t.text for t in texts] == [recs[1]["continuation"]["text"], recs[3]["prompt"]["text"]]


def _texts(records, indices):
    return {t.strip() for i in indices for t in (records[i].prompt.text, records[i].continuation.text)} - {""}


def test_split_parts_are_disjoint_and_cover_the_file(records):
    split = split_rtp(records, eval_prompts=300, scorer_test=400, seed=3)
    ev, tr = set(split.eval_prompts), set(split.train_prompts)
    s_tr, s_te = set(split.scorer_train), set(split.scorer_test)
    assert len(ev) == 300 and 400 <= len(s_te) < 420
    assert not ev & s_tr and not ev & s_te and not s_tr & s_te and not ev & tr
    nontoxic = {r.index for r in records if r.prompt.toxicity is not None and r.prompt.toxicity < 0.5}
    assert ev | tr <= nontoxic
    # only the other records of evaluation prompts' text groups are left out, a handful
    assert len(set(range(5000)) - (ev | s_tr | s_te)) < 20
    assert len(nontoxic - (ev | tr)) < 20
    # toxic prompts' texts are scorer data: the scorer must see toxic text
    assert any(records[i].prompt.toxicity is not None and records[i].prompt.toxicity >= 0.5 for i in s_tr)
    assert len(scored_texts(records, split.scorer_train)) > 7000
    # No text of an evaluation record is scorer data or a training prompt, and no scorer test
    # text is a training text, although RTP repeats a few texts across records.
    eval_texts = _texts(records, ev)
    assert not eval_texts & _texts(records, s_tr | s_te)
    assert not eval_texts & {records[i].prompt.text.strip() for i in tr}
    assert not _texts(records, s_te) & _texts(records, s_tr)
    assert len({records[i].prompt.text for i in ev}) == 300


def test_repeated_texts_stay_in_one_group(records):
    from fgrlhf.data.rtp import text_groups

    groups = text_groups(records)
    assert sorted(i for g in groups for i in g) == list(range(5000))
    newsletter = [r.index for r in records if r.prompt.text == "Get our daily newsletter Upgrade your inbox and"]
    assert len(newsletter) == 8
    assert any(set(newsletter) <= set(g) for g in groups)


def test_split_is_seeded_recorded_and_tied_to_its_file(records, tmp_path):
    a, b = split_rtp(records, seed=0), split_rtp(records, seed=0)
    assert a == b
    assert split_rtp(records, seed=1).eval_prompts != a.eval_prompts
    a.save(tmp_path / "split.json")
    loaded = RTPSplit.load(tmp_path / "split.json")
    assert loaded == a and loaded.seed == 0
    loaded.check(records)
    with pytest.raises(ValueError, match="another file"):
        loaded.check(records[:100])
    with pytest.raises(ValueError, match="no training prompt"):
        split_rtp(records, eval_prompts=4000)


def test_task_examples_carry_record_id_and_prompt_toxicity(records):
    split = split_rtp(records)
    task = rtp_task(records, split.eval_prompts[:3])
    for ex, i in zip(task, split.eval_prompts[:3]):
        assert ex.prompt == records[i].prompt.text
        assert ex.metadata == {"record_id": i, "prompt_toxicity": records[i].prompt.toxicity}
