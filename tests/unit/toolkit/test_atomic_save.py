"""A save cut short at any point leaves a whole copy that ``intact_dir`` finds."""

from __future__ import annotations

import pytest

from fgrlhf.toolkit.save import atomic_save_dir, intact_dir


def _write(text):
    return lambda tmp: (tmp / "state.txt").write_text(text)


def test_a_crash_while_writing_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "checkpoint"
    atomic_save_dir(target, _write("1"))

    def crash(tmp):
        (tmp / "state.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_save_dir(target, crash)
    assert (intact_dir(target) / "state.txt").read_text() == "1"


def test_a_crash_between_the_two_renames_leaves_a_whole_copy(tmp_path):
    target = tmp_path / "checkpoint"
    atomic_save_dir(target, _write("1"))
    atomic_save_dir(tmp_path / "next", _write("2"))
    # The state right after the first rename of a swap: no checkpoint/, the previous one in
    # checkpoint.old, the new complete one in checkpoint.tmp.
    target.rename(tmp_path / "checkpoint.old")
    (tmp_path / "next").rename(tmp_path / "checkpoint.tmp")
    assert intact_dir(target) == tmp_path / "checkpoint.tmp"
    assert (intact_dir(target) / "state.txt").read_text() == "2"
    (tmp_path / "checkpoint.tmp" / ".complete").unlink()  # the new one unfinished: the old one
    assert (intact_dir(target) / "state.txt").read_text() == "1"
    # The next save recovers the normal layout.
    atomic_save_dir(target, _write("3"))
    assert (intact_dir(target) / "state.txt").read_text() == "3"
    assert intact_dir(tmp_path / "never") is None
