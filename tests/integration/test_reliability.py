"""Every command, fed bad input or hit by a fault, as a new user would meet it: each case
ends with exit code 2 and one clear message that names the key, file, record or field at
fault (no traceback), and nothing written before the fault is lost or changed.

Most cases fail at start-up, before any model loads; the few that train use tiny models.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TESTS_DIR = Path(__file__).resolve().parents[1]
USER_ERROR = 2


def command(app: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600,
            background: bool = False):
    """``python -m fgrlhf.cli.<app> args`` as a user runs it (offline, one thread)."""
    cmd = [sys.executable, "-m", f"fgrlhf.cli.{app}", *args]
    if app != "segment":  # fgrlhf-segment has no threads setting
        cmd.append("threads=1")
    base = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "FGRLHF_DEBUG")}
    full_env = {**base, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline",
                "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    if background:
        return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_user_error(res, *names: str) -> None:
    """Exit code 2, one message naming every one of ``names``, no traceback."""
    assert res.returncode == USER_ERROR, f"exit {res.returncode}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for name in names:
        assert name in res.stderr, f"{name!r} not named in:\n{res.stderr[-3000:]}"


def tree_hashes(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (``skip``: top-level names)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --- inputs: the bad files a user might hand over -----------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    from fgrlhf.paths import DATA_DIR

    root = tmp_path_factory.mktemp("inputs")
    feedback = json.loads((DATA_DIR / "qa_feedback" / "feedback.json").read_text())[:40]
    files = {
        "small_feedback": json.dumps(feedback).encode(),
        "latin1": json.dumps(feedback[:3]).encode().replace(b'"question"', "\"quéstion\"".encode("latin-1"), 1),
        "empty_list": b"[]",
        "empty_file": b"",
        "truncated": json.dumps(feedback[:3]).encode()[:-200],
        "missing_field": json.dumps([feedback[0], {k: v for k, v in feedback[1].items() if k != "gold"}]).encode(),
        "bad_rtp": b'{"prompt": {"text": "a"}, "continuation": {"text": "b"}}\n{"prompt": \n',
        "blocker": b"a regular file where a folder is expected\n",
    }
    paths = {}
    for name, content in files.items():
        path = root / (name + (".jsonl" if "rtp" in name else ".json" if name != "blocker" else ""))
        path.write_bytes(content)
        paths[name] = str(path)
    paths["tmp"] = str(root)
    return paths


# (app, arguments, what the message must name); "{name}" is an input file's path.
START_UP = [
    # fgrlhf-train: every numeric setting range-checked, files named
    ("train", ["experiment=tiny", "ppo.minibatch_size=-4"], ["ppo.minibatch_size=-4", "> 0"]),
    ("train", ["experiment=tiny", "task.prompts_per_iteration=-4"], ["task.prompts_per_iteration=-4"]),
    ("train", ["experiment=tiny", "reward.weights.relevance=nan"], ["reward.weights.relevance=nan", "finite"]),
    ("train", ["experiment=tiny", "sampling.top_p=1.5", "ppo.kl_estimator=k9", "iterations=0"],
     ["3 settings", "sampling.top_p=1.5", "(0, 1]", "ppo.kl_estimator='k9'", "k1", "iterations=0"]),
    ("train", ["experiment=tiny", "task.prompts_file={empty_list}"], ["{empty_list}", "empty"]),
    ("train", ["experiment=tiny", "task.prompts_file={latin1}"], ["{latin1}", "not UTF-8"]),
    # fgrlhf-rm
    ("rm", ["rm.optim.lr=-1"], ["rm.optim.lr=-1.0", "> 0"]),
    ("rm", ["rm.coverage_threshold=2"], ["rm.coverage_threshold=2.0", "[0, 1]"]),
    ("rm", ["rm.optim.warmup_ratio=1.5", "rm.optim.patience=-1"], ["rm.optim.warmup_ratio=1.5", "rm.optim.patience=-1"]),
    ("rm", ["rm.max_question_tokens=300"], ["rm.max_question_tokens=300", "rm.max_length=256"]),
    ("rm", ["mode=serve"], ["mode='serve'", "train, eval"]),
    ("rm", ["feedback_file={latin1}"], ["{latin1}", "not UTF-8", "line 1"]),
    ("rm", ["feedback_file={empty_list}"], ["{empty_list}", "empty"]),
    ("rm", ["feedback_file={truncated}"], ["{truncated}", "not valid JSON"]),
    ("rm", ["feedback_file={missing_field}"], ["{missing_field}", "record 1", "'gold'"]),
    ("rm", ["feedback_file={small_feedback}", "split.dev_questions=30", "split.test_questions=20"],
     ["{small_feedback}", "split.dev_questions=30", "split.test_questions=20"]),
    ("rm", ["checkpoint={blocker}/relevance"], ["{blocker}", "not writable"]),
    ("rm", ["mode=eval", "checkpoint={tmp}/no_such_rm"], ["{tmp}/no_such_rm", "does not exist"]),
    ("rm", ["backbone={tmp}/no_such_encoder"], ["{tmp}/no_such_encoder", "does not exist"]),
    # fgrlhf-sft
    ("sft", ["sft.epochs=0", "dev_fraction=1.5"], ["sft.epochs=0", "dev_fraction=1.5", "(0, 1)"]),
    ("sft", ["sft.lr=inf", "policy.kind=encoder"], ["sft.lr=inf", "policy.kind='encoder'"]),
    ("sft", ["prompts_file={empty_list}"], ["{empty_list}", "empty"]),
    ("sft", ["policy.init={tmp}/no_such_policy"], ["{tmp}/no_such_policy", "does not exist"]),
    ("sft", ["output={blocker}/policy"], ["{blocker}", "not writable"]),
    # fgrlhf-toxicity
    ("toxicity", ["threshold=nan"], ["threshold=nan", "[0, 1]"]),
    ("toxicity", ["optim.head_lr=0", "eval_split=dev"], ["optim.head_lr=0.0", "eval_split='dev'"]),
    ("toxicity", ["data_file={empty_file}"], ["{empty_file}", "empty"]),
    ("toxicity", ["data_file={bad_rtp}"], ["{bad_rtp}", "record 1", "not valid JSON"]),
    ("toxicity", ["mode=eval", "checkpoint={tmp}/no_such_scorer"], ["{tmp}/no_such_scorer", "does not exist"]),
    ("toxicity", ["checkpoint={blocker}/scorer"], ["{blocker}", "not writable"]),
    # fgrlhf-eval: a local path is never taken for a hub id
    ("eval", ["checkpoint={tmp}/no_such_policy"], ["{tmp}/no_such_policy", "does not exist"]),
    ("eval", ["checkpoint=./no_such_policy"], ["./no_such_policy", "does not exist"]),
    ("eval", ["checkpoint=tiny_gpt2", "max_new_tokens=0", "part=holdout"], ["max_new_tokens=0", "part='holdout'"]),
    ("eval", ["checkpoint=tiny_gpt2", "reward=rules", "output={blocker}/eval"], ["{blocker}/eval", "not writable"]),
    # fgrlhf-segment
    ("segment", ["batch_size=0", "min_words=-1"], ["batch_size=0", "min_words=-1"]),
    ("segment", ["+weights.nope=1.0"], ["weights", "nope"]),
    ("segment", ["feedback_file={latin1}"], ["{latin1}", "not UTF-8"]),
    ("segment", ["tokenizer={tmp}/no_such_tokenizer"], ["tokenizer={tmp}/no_such_tokenizer"]),
    ("segment", ["output={blocker}/table.json"], ["{blocker}", "not writable"]),
    # fgrlhf-pipeline: a later stage's settings fail before the first stage runs
    ("pipeline", ["eval_questions=0"], ["eval_questions=0"]),
    ("pipeline", ['train_overrides=["ppo.lrr=1"]'], ["train_overrides", "ppo.lrr"]),
    ("pipeline", ['sft_overrides=["sft.epochs=0"]'], ["sft_overrides", "sft.epochs=0"]),
    ("pipeline", ["policy_init={tmp}/no_such_policy"], ["{tmp}/no_such_policy", "does not exist"]),
    ("pipeline", ["output={blocker}/run"], ["{blocker}/run", "not writable"]),
]


@pytest.mark.parametrize(("app", "args", "names"), START_UP,
                         ids=[f"{a}-{'-'.join(x.split('=')[0] for x in args)}" for a, args, _ in START_UP])
def test_bad_input_fails_at_start_up_naming_the_culprit(tmp_path, inputs, app, args, names):
    before = tree_hashes(Path(inputs["tmp"]))
    res = command(app, *(a.format(**inputs) for a in args), f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert_user_error(res, *(n.format(**inputs) for n in names))
    assert "Repo id" not in res.stderr
    assert tree_hashes(Path(inputs["tmp"])) == before  # the inputs (and the file in the way) untouched
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # failed before any work


def test_full_traceback_on_request(tmp_path):
    res = command("rm", "rm.optim.lr=-1", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "ConfigError" in res.stderr and "rm.optim.lr=-1.0" in res.stderr


@pytest.mark.parametrize("app", ["train", "rm", "sft", "eval", "toxicity", "dpo"])
def test_an_unwritable_run_folder_is_one_clear_error(tmp_path, inputs, app):
    res = command(app, f"hydra.run.dir={inputs['blocker']}/run", cwd=tmp_path)
    assert_user_error(res, f"{inputs['blocker']}/run", f"{inputs['blocker']} is a file")


# --- faults in runs that train: tiny models ---------------------------------------------------

FAST = ["experiment=tiny", "iterations=2", "task.prompts_per_iteration=2", "sampling.max_new_tokens=10",
        "save_policy=false", "policy.value=separate"]


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory, tiny_gpt2_dir) -> Path:
    """A finished fgrlhf-train run with a checkpoint after each of its 2 iterations."""
    root = tmp_path_factory.mktemp("prior")
    res = command("train", *FAST, f"policy.init={tiny_gpt2_dir}", "checkpoint_every=1", f"hydra.run.dir={root}/run",
                  cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "run"


def _copy(prior_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(prior_run, run)
    return run


def _steps(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_resume_refuses_a_changed_setting_unless_named(tmp_path, prior_run, tiny_gpt2_dir):
    run = _copy(prior_run, tmp_path)
    before = tree_hashes(run)
    common = [*FAST, f"policy.init={tiny_gpt2_dir}", "iterations=3", f"resume={run}/checkpoint", "ppo.lr=1e-3",
              "reward.weights.length=5"]
    refused = command("train", *common, f"hydra.run.dir={tmp_path}/refused", cwd=tmp_path)
    assert_user_error(refused, "ppo.lr", "reward.weights.length", "resume_overrides=[")
    assert tree_hashes(run) == before
    assert not (tmp_path / "refused" / "metrics.jsonl").exists()

    res = command("train", *common, "resume_overrides=[ppo.lr,reward.weights.length]",
                  f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert summary["weights"]["length"] == 5
    assert summary["resumed"]["applied"]["ppo.lr"] == [1e-4, 1e-3]
    # The optimizer runs at the new rate (a constant schedule: no warmup, no decay).
    assert [m["lr"] for m in _steps(prior_run)] == pytest.approx([1e-4, 1e-4])
    assert [(m["step"], m["lr"]) for m in _steps(tmp_path / "resumed")] == [(2, pytest.approx(1e-3))]
    assert tree_hashes(run) == before  # resuming elsewhere never touches the checkpoint's run


def test_resume_refuses_another_value_model(tmp_path, prior_run, tiny_gpt2_dir):
    run = _copy(prior_run, tmp_path)
    before = tree_hashes(run)
    res = command("train", *FAST[:-1], "policy.value=shared", f"policy.init={tiny_gpt2_dir}", "iterations=3",
                  f"resume={run}/checkpoint", f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert_user_error(res, "policy.value", f"{run}/checkpoint")
    assert "state_dict" not in res.stderr
    assert tree_hashes(run) == before


def test_resume_after_an_interrupted_swap_uses_the_whole_copy(tmp_path, prior_run, tiny_gpt2_dir):
    run = _copy(prior_run, tmp_path)
    (run / "checkpoint").rename(run / "checkpoint.old")  # a crash between the swap's two renames
    before = tree_hashes(run)
    res = command("train", *FAST, f"policy.init={tiny_gpt2_dir}", "iterations=3", f"resume={run}/checkpoint",
                  f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{run}/checkpoint.old" in res.stderr
    assert [m["step"] for m in _steps(tmp_path / "resumed")] == [2]
    assert tree_hashes(run) == before


def test_resume_in_place_logs_each_step_once_and_takes_over_a_stale_lock(tmp_path, prior_run, tiny_gpt2_dir):
    run = _copy(prior_run, tmp_path)
    # Killed after logging step 2 but before checkpointing it, with its lock left behind.
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 2, "reward/total": 123.0}) + "\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".fgrlhf.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "app": "fgrlhf-train"}))
    policy_before = tree_hashes(run / "checkpoint" / "policy")
    res = command("train", *FAST, f"policy.init={tiny_gpt2_dir}", "iterations=3", "checkpoint_every=1",
                  f"resume={run}/checkpoint", f"hydra.run.dir={run}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "stale lock" in res.stderr and str(dead.pid) in res.stderr
    steps = _steps(run)
    assert [m["step"] for m in steps] == [0, 1, 2]
    assert steps[2]["reward/total"] != 123.0
    assert steps[:2] == _steps(prior_run)[:2]  # the records before the checkpoint kept as they were
    assert tree_hashes(run / "checkpoint" / "policy") != policy_before  # the new checkpoint swapped in
    assert not (run / ".fgrlhf.lock").exists()


@pytest.mark.parametrize("fault", ["truncated trainer.pt", "truncated model.safetensors", "deleted config.json"])
def test_a_broken_checkpoint_names_its_broken_piece(tmp_path, prior_run, tiny_gpt2_dir, fault):
    run = _copy(prior_run, tmp_path)
    ckpt = run / "checkpoint"
    if fault == "truncated trainer.pt":
        data = (ckpt / "trainer.pt").read_bytes()
        (ckpt / "trainer.pt").write_bytes(data[: len(data) // 2])
        names = [str(ckpt / "trainer.pt"), "truncated"]
    elif fault == "truncated model.safetensors":
        data = (ckpt / "policy" / "model.safetensors").read_bytes()
        (ckpt / "policy" / "model.safetensors").write_bytes(data[: len(data) // 2])
        names = [str(ckpt / "policy"), "model.safetensors"]
    else:
        (ckpt / "policy" / "config.json").unlink()
        names = [str(ckpt / "policy"), "config.json"]
    before = tree_hashes(run)
    res = command("train", *FAST, f"policy.init={tiny_gpt2_dir}", "iterations=3", f"resume={ckpt}",
                  f"hydra.run.dir={tmp_path}/resumed", cwd=tmp_path)
    assert_user_error(res, *names)
    assert tree_hashes(run) == before


def test_a_second_run_into_a_folder_in_use_refuses(tmp_path, tiny_gpt2_dir):
    folder = tmp_path / "shared"
    args = [*FAST, f"policy.init={tiny_gpt2_dir}", "iterations=500", f"hydra.run.dir={folder}"]
    first = command("train", *args, cwd=tmp_path, background=True)
    try:
        lock = folder / ".fgrlhf.lock"
        deadline = time.time() + 180
        while not lock.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert lock.exists(), first.stderr.read()[-3000:] if first.poll() is not None else "no lock after 180 s"
        second = command("train", *args, cwd=tmp_path)
        assert_user_error(second, str(folder), f"process {first.pid}", "in use")
        assert first.poll() is None  # the first run carries on
        assert json.loads(lock.read_text())["pid"] == first.pid  # and still holds its folder
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    lines = (folder / "metrics.jsonl").read_text().splitlines() if (folder / "metrics.jsonl").exists() else []
    assert [json.loads(x)["step"] for x in lines] == list(range(len(lines)))  # one writer only


def test_a_reward_model_that_raises_names_itself_the_iteration_and_the_checkpoint(tmp_path, tiny_gpt2_dir):
    run = tmp_path / "run"
    res = command("train", *FAST, f"policy.init={tiny_gpt2_dir}", "iterations=4", "checkpoint_every=1",
                  "+reward.models.flaky._target_=plugins.lab_rewards.RaisesAfter", "+reward.models.flaky.calls=2",
                  f"hydra.run.dir={run}", cwd=tmp_path)
    assert_user_error(res, "'flaky'", "RaisesAfter", "iteration 2", f"{run}/checkpoint", "ConnectionError")
    assert [m["step"] for m in _steps(run)] == [0, 1]
    state = __import__("torch").load(run / "checkpoint" / "trainer.pt", map_location="cpu", weights_only=False)
    assert state["trainer"]["iteration"] == 2  # the checkpoint named holds the last finished iteration


def test_a_failed_final_write_keeps_the_reward_model_in_a_rescue_folder(tmp_path, tiny_bert_dir, inputs):
    rescue_root = tmp_path / "tmpdir"
    rescue_root.mkdir()
    # A name the file system takes, whose ".tmp" sibling it does not: the final save fails.
    checkpoint = tmp_path / ("r" * 253)
    res = command("rm", "rm=relevance", f"backbone={tiny_bert_dir}", f"feedback_file={inputs['small_feedback']}",
                  f"checkpoint={checkpoint}", "split.dev_questions=6", "split.test_questions=8", "rm.optim.epochs=1",
                  "rm.optim.batch_size=8", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path, env={"TMPDIR": str(rescue_root)})
    (rescue,) = rescue_root.glob("fgrlhf-rescue-rm-*")
    assert_user_error(res, str(checkpoint), str(rescue))
    for name in ("model.safetensors", "config.json", "tokenizer.json", "fgrlhf_rm.json", "split.json"):
        assert (rescue / name).is_file(), name
    from fgrlhf.reward.learned import SegmentClassifierReward

    assert SegmentClassifierReward(rescue).meta.category == "relevance"  # a whole, loadable model
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("test/accuracy") == 1
    assert not (tmp_path / "run" / ".fgrlhf.lock").exists()


def test_eval_names_a_truncated_policy_file(tmp_path, tiny_gpt2_dir):
    policy = tmp_path / "policy"
    shutil.copytree(tiny_gpt2_dir, policy)
    data = (policy / "model.safetensors").read_bytes()
    (policy / "model.safetensors").write_bytes(data[: len(data) // 3])
    before = tree_hashes(policy)
    res = command("eval", f"checkpoint={policy}", "reward=rules", "questions=2", f"hydra.run.dir={tmp_path}/run",
                  cwd=tmp_path)
    assert_user_error(res, str(policy), "model.safetensors")
    assert tree_hashes(policy) == before
    assert not (tmp_path / "run" / "summary.json").exists()
