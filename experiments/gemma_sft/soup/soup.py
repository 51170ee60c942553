"""Average the weights of SFT checkpoints that share one base model (a "model soup").

    python experiments/gemma_sft/soup/soup.py OUT CKPT [CKPT ...]

Each CKPT is a merged, plain checkpoint folder (what fgrlhf-sft writes); OUT gets the
element-wise mean of their ``model.safetensors`` and the first one's config, tokenizer and
``fgrlhf_sft.json`` (so fgrlhf-eval reads the same prompt format), plus ``soup.json``
naming the ingredients. Every merged checkpoint is base + delta, so the mean is base + the
mean of the deltas, whatever each run trained (LoRA or all weights).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main(out: str, ckpts: list[str]) -> None:
    dirs = [Path(c) for c in ckpts]
    total, dtype = None, None
    for d in dirs:
        sd = load_file(str(d / "model.safetensors"))
        if total is None:
            total = {k: v.double() for k, v in sd.items()}
            dtype = {k: v.dtype for k, v in sd.items()}
        else:
            if sd.keys() != total.keys():
                raise SystemExit(f"{d}: its weights are not those of {dirs[0]}")
            for k, v in sd.items():
                total[k] += v.double()
    soup = {k: (v / len(dirs)).to(dtype[k]).contiguous() for k, v in total.items()}
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "fgrlhf_sft.json"):
        shutil.copy(dirs[0] / name, target / name)
    save_file(soup, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "soup.json").write_text(json.dumps({"ingredients": [str(d) for d in dirs]}, indent=1))
    (target / ".complete").touch()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
