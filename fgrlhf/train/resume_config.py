"""Explicit resume: the checkpoint's configuration against the new one.

A resumed run continues the run that wrote the checkpoint. Every setting that differs is
listed; the run refuses to continue unless each difference is either one that never changes
the run's course (``FREE``: how long to run, how often to evaluate or save, threads, logging)
or named in ``resume_overrides``, in which case the new value is applied and recorded.
Settings that fix the models or the data (``FIXED``) cannot change on resume at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fgrlhf.errors import CheckpointError

# Prefixes of keys that may differ freely: they do not change what the next update computes.
FREE = ("iterations", "resume", "resume_overrides", "threads", "device", "checkpoint_every", "save_policy",
        "eval.", "wandb.")
# Prefixes of keys that define the models, the data or the random streams: a checkpoint of
# another setting cannot be continued under them.
FIXED = ("policy.", "task.name", "task.prompts_file", "split.", "seed", "reward.models", "reward.sentence_splitter",
         "reward.normalize", "sampling.num_samples", "task.prompts_per_iteration", "precision")


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"ppo.lr": 1e-5, ...}``: nested mappings as dotted keys; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _matches(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p.rstrip(".") or key.startswith(p if p.endswith(".") else p + ".") or key == p
               for p in prefixes)


def differences(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, checkpoint's value, new value)`` for every setting that differs."""
    a, b = flatten(saved), flatten(new)
    missing = object()
    rows = []
    for key in sorted(set(a) | set(b)):
        old, now = a.get(key, missing), b.get(key, missing)
        if old != now:
            rows.append((key, None if old is missing else old, None if now is missing else now))
    return rows


def check_resume(saved: Mapping[str, Any], new: Mapping[str, Any], overrides: Iterable[str],
                 checkpoint: str) -> list[tuple[str, Any, Any]]:
    """The differences that ``overrides`` apply (free ones need no override); raises a
    ``CheckpointError`` listing every difference when one is neither free nor overridden,
    or touches a ``FIXED`` setting."""
    overrides = list(overrides)
    rows = [r for r in differences(saved, new) if not _matches(r[0], FREE)]
    fixed = [r for r in rows if _matches(r[0], FIXED)]
    refused = [r for r in rows if not _matches(r[0], overrides)]
    unknown = [o for o in overrides if not any(_matches(r[0], [o]) for r in rows)]
    if not fixed and not refused and not unknown:
        return rows

    def line(r: tuple[str, Any, Any]) -> str:
        return f"  {r[0]}: {r[1]!r} in the checkpoint, {r[2]!r} now"

    parts = [f"resume={checkpoint}: the configuration differs from the checkpoint's:"]
    parts += [line(r) for r in rows]
    if fixed:
        parts.append("these cannot change on resume (they define the models, the data or the random "
                     f"streams): {', '.join(r[0] for r in fixed)}")
    elif refused:
        parts.append(f"to apply the new values, name them: resume_overrides=[{','.join(r[0] for r in refused)}]; "
                     "or run with the checkpoint's values")
    if unknown:
        parts.append(f"resume_overrides names settings that do not differ: {', '.join(unknown)}")
    raise CheckpointError("\n".join(parts))
