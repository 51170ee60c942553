"""One reliability diagram for several `fgrlhf-rm` summaries (segment models; train or
mode=eval JSON lines holding `reliability`), e.g. single seeds beside their ensemble.

    python experiments/reward_models/calibration_figure.py out.png "R1 seed 0=run.log" "R1 ensemble=ens.log"

Each argument is LABEL=FILE; the file's last line is the JSON summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fgrlhf.eval.calibration import ReliabilityBin, plot_reliability


def bins_of(summary: dict) -> list[ReliabilityBin]:
    rel = summary["reliability"]
    width = rel["lo"][1] - rel["lo"][0] if len(rel["lo"]) > 1 else 1.0
    return [ReliabilityBin(lo, lo + width, n, c, f)
            for lo, n, c, f in zip(rel["lo"], rel["count"], rel["confidence"], rel["frequency"])]


def main(out: str, specs: list[str]) -> None:
    curves = {}
    for spec in specs:
        label, _, path = spec.partition("=")
        summary = json.loads(Path(path).read_text().strip().splitlines()[-1])
        curves[f"{label} (ECE {summary['ece']:.3f})"] = bins_of(summary)
    print(plot_reliability(curves, out, title="reliability of P(error), test split"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
