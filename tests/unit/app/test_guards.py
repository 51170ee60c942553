"""Start-up validation, the output-folder lock and the one-line user-error report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from fgrlhf.errors import ConfigError, OutputError, UserError, report_user_errors
from fgrlhf.runlock import LOCK_NAME, RunLock, check_writable
from fgrlhf.validate import check_rule, problems, validate


@pytest.mark.parametrize(("value", "rule", "ok"), [
    (1, "> 0", True), (0, "> 0", False), (-4, "> 0", False), (0, ">= 0", True), (-1e-9, ">= 0", False),
    (0.0, "[0, 1]", True), (1.0, "[0, 1]", True), (1.5, "[0, 1]", False), (0.0, "(0, 1]", False),
    (1.0, "[0, 1)", False), (float("nan"), ">= 0", False), (float("inf"), "> 0", False),
    ("k2", "in k1 k2 k3", True), ("k4", "in k1 k2 k3", False), (None, "> 0", True), (True, "> 0", False),
    ("3", "> 0", False),
])
def test_rules(value, rule, ok):
    assert check_rule(value, rule) is ok


@dataclass
class _Inner:
    RULES: ClassVar[dict[str, str]] = {"size": "> 0", "p": "[0, 1]"}
    size: int = 4
    p: float = 0.5
    scale: float = 1.0


@dataclass
class _App:
    RULES: ClassVar[dict[str, str]] = {"mode": "in train eval"}
    inner: _Inner = field(default_factory=_Inner)
    weights: dict[str, float] = field(default_factory=dict)
    mode: str = "train"
    optional: float | None = None


def test_every_violation_names_its_key_value_and_range():
    cfg = _App(inner=_Inner(size=-4, p=1.5, scale=float("nan")), weights={"relevance": float("nan"), "ok": 1.0},
               mode="serve")
    found = problems(cfg, _App)
    assert found == ["inner.size=-4: must be > 0", "inner.p=1.5: in [0, 1]", "inner.scale=nan: must be a finite number",
                     "weights.relevance=nan: must be a finite number", "mode='serve': one of train, eval"]
    with pytest.raises(ConfigError, match="5 settings out of range"):
        validate(cfg, _App)
    validate(_App(), _App)  # the defaults pass


def test_rules_read_omegaconf_nodes_too():
    from omegaconf import OmegaConf

    node = OmegaConf.merge(OmegaConf.structured(_App), {"inner": {"size": 0}})
    assert problems(node, _App) == ["inner.size=0: must be > 0"]


def test_a_second_run_in_a_locked_folder_refuses_naming_folder_and_owner(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename,
                                                      "app": "fgrlhf-train", "started": "then", "command": "x"}))
        with pytest.raises(OutputError) as err:
            RunLock(tmp_path, "fgrlhf-train").acquire()
        assert str(tmp_path) in str(err.value) and f"process {other.pid}" in str(err.value)
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "app": "fgrlhf-rm"}))
    with RunLock(tmp_path, "fgrlhf-train"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "stale lock" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()  # released at the end


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_is_refused_before_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="not writable"):
        check_writable(ro / "run")


def test_an_unwritable_folder_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=f"{blocker}/run is not writable"):
        check_writable(blocker / "run")


def test_user_errors_end_in_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("FGRLHF_DEBUG", raising=False)

    def fail():
        raise UserError("prompts.json, record 3, field 'question': not a string")

    with pytest.raises(SystemExit) as stop:
        report_user_errors("fgrlhf-train", fail)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "fgrlhf-train: error: prompts.json, record 3, field 'question': not a string"
    assert "Traceback" not in err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(UserError):
        report_user_errors("fgrlhf-train", fail)


def test_bugs_keep_their_traceback():
    def bug():
        raise KeyError("x")

    with pytest.raises(KeyError):
        report_user_errors("fgrlhf-train", bug)
