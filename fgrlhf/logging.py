"""Metric logging: a local ``metrics.jsonl`` always, and wandb.

wandb runs offline (files under the run folder, nothing sent) unless the user names a
project, in the config (``wandb.project``) or with ``WANDB_PROJECT``; ``wandb.mode=disabled``
turns it off.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Writes each ``log`` call as one JSON line, and to wandb when it is on."""

    def __init__(self, run_dir: str | Path, config: dict[str, Any] | None = None, project: str | None = None,
                 mode: str | None = None, name: str | None = None, resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self._file = open(self.path, "a")
        self._t0 = time.time()
        project = project or os.environ.get("WANDB_PROJECT")
        mode = mode or ("online" if project else "offline")
        self.wandb = None
        if mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self.wandb = wandb.init(project=project or "fgrlhf", mode=mode, dir=str(self.run_dir),
                                    config=config or {}, name=name, reinit="finish_previous")

    def log(self, metrics: dict[str, Any], step: int) -> None:
        record = {"step": step, "time": round(time.time() - self._t0, 3), **metrics}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        self._file.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
