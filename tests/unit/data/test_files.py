"""Unreadable input files are named, with the line or record where there is one."""

from __future__ import annotations

import pytest

from fgrlhf.data.errors import DataError
from fgrlhf.data.files import read_json_lines, read_json_list, read_text


def test_missing_folder_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}/none.json: no such file"):
        read_text(tmp_path / "none.json")
    with pytest.raises(DataError, match="is a folder"):
        read_text(tmp_path)
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(DataError, match="empty.json: the file is empty"):
        read_text(tmp_path / "empty.json")
    (tmp_path / "latin1.json").write_bytes('[{"q": "ok"},\n{"q": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.json: not UTF-8 text: byte 24 \(line 2\)"):
        read_text(tmp_path / "latin1.json")


def test_json_lists(tmp_path):
    (tmp_path / "cut.json").write_text('[{"question": "a"}, {"quest')
    with pytest.raises(DataError, match="cut.json: not valid JSON"):
        read_json_list(tmp_path / "cut.json")
    (tmp_path / "none.json").write_text("[]")
    with pytest.raises(DataError, match="none.json: the list of records is empty"):
        read_json_list(tmp_path / "none.json")
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(DataError, match="expected a JSON list"):
        read_json_list(tmp_path / "obj.json")
    (tmp_path / "ok.json").write_text('[{"a": 1}]')
    assert read_json_list(tmp_path / "ok.json") == [{"a": 1}]


def test_json_lines_name_the_bad_line(tmp_path):
    (tmp_path / "rtp.jsonl").write_text('{"a": 1}\n\n{"a": \n')
    rows = read_json_lines(tmp_path / "rtp.jsonl")
    assert next(rows) == (0, {"a": 1})
    with pytest.raises(DataError, match="rtp.jsonl, record 2: not valid JSON"):
        next(rows)
