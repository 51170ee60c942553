"""QA-Feedback loaders: the real files load unchanged; malformed ones are named precisely."""

from __future__ import annotations

import copy
import json

import pytest

from fgrlhf.data import DataError, load_feedback, load_prompts
from fgrlhf.paths import DATA_DIR

FEEDBACK = DATA_DIR / "qa_feedback" / "feedback.json"
PROMPTS = DATA_DIR / "qa_feedback" / "prompts.json"


def test_bundled_files_load(qa_feedback):
    assert len(qa_feedback) == 400
    assert all(len(ex.predictions) == 4 and len(ex.preference) == 6 for ex in qa_feedback)
    n_errors = sum(len(ex.feedback.errors) for ex in qa_feedback)
    assert 1000 < n_errors < 1200  # "about 1,100 error spans"
    prompts = load_prompts(PROMPTS)
    assert len(prompts) == 400
    assert [p.question for p in prompts] == [ex.question for ex in qa_feedback]
    assert all(p.references and all(isinstance(r, str) for r in p.references) for p in prompts)
    assert all(p.text.startswith("question:") for p in prompts)


@pytest.fixture()
def raw():
    with open(FEEDBACK) as f:
        return json.load(f)[:5]


def _write(tmp_path, data, name="bad_feedback.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _first_with_errors(raw):
    return next(i for i, r in enumerate(raw) if r["feedback"]["errors"])


@pytest.mark.parametrize("mutate, field, message", [
    (lambda r, i: r[i].pop("gold"), "gold", "missing"),
    (lambda r, i: r[i].__setitem__("preference", [1, 2, 0]), "preference", "expected 6 judgements"),
    (lambda r, i: r[i].__setitem__("preference", [1, 2, 0, 3, 1, 1]), "preference", "must be 0"),
    (lambda r, i: r[i]["feedback"]["errors"][0].__setitem__("end", 10**6),
     "feedback.errors[0].start", "out of range"),
    (lambda r, i: r[i]["feedback"]["errors"][0].__setitem__("start", r[i]["feedback"]["errors"][0]["start"] + 1),
     "feedback.errors[0].start", "does not start on a word boundary"),
    (lambda r, i: r[i]["feedback"]["errors"][0].__setitem__("error type", "Boring"),
     "feedback.errors[0].error type", "unknown error type 'Boring'"),
    (lambda r, i: r[i]["feedback"]["errors"][0].pop("start"), "feedback.errors[0].start", "missing"),
    (lambda r, i: r[i].__setitem__("prediction 3", 42), "prediction 3", "expected str, got int"),
])
def test_malformed_records_name_file_record_and_field(tmp_path, raw, mutate, field, message):
    i = _first_with_errors(raw)
    bad = copy.deepcopy(raw)
    mutate(bad, i)
    path = _write(tmp_path, bad)
    with pytest.raises(DataError, match=message) as info:
        load_feedback(path)
    err = info.value
    assert err.file == str(path) and err.record == i and err.field == field
    assert f"record {i}" in str(err) and "bad_feedback.json" in str(err)


def test_overlapping_spans_of_different_categories_are_rejected(tmp_path, raw):
    i = _first_with_errors(raw)
    bad = copy.deepcopy(raw)
    first = bad[i]["feedback"]["errors"][0]
    family = "Unverifiable" if first["error type"] in ("Irrelevant", "Redundant", "Incoherent") else "Irrelevant"
    bad[i]["feedback"]["errors"].append({**first, "error type": family})
    with pytest.raises(DataError, match="overlaps") as info:
        load_feedback(_write(tmp_path, bad))
    assert info.value.record == i and info.value.field == "feedback.errors"


def test_not_json_and_not_a_list(tmp_path):
    p = tmp_path / "f.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_feedback(p)
    p.write_text('{"a": 1}')
    with pytest.raises(DataError, match="expected a JSON list"):
        load_feedback(p)


def test_prompt_file_errors(tmp_path):
    with open(PROMPTS) as f:
        data = json.load(f)[:3]
    data[2]["answer"] = "[not json"
    path = _write(tmp_path, data, "bad_prompts.json")
    with pytest.raises(DataError, match="record 2, field 'answer'"):
        load_prompts(path)
