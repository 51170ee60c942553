"""Greedy and N sampled answers (top-p 0.9, temperature 0.7, bf16 autocast) of the preset SFT
policy (runs/sft/gemma3_270m_93) to every question of one part, one JSON line per question,
for minimum-Bayes-risk selection offline (analyse.py).

    .venv/bin/python experiments/gemma_sft/mbr/samples.py dev 8 dev8.jsonl
"""
import json, sys, time
import torch
from fgrlhf.train.config import TaskConfig, set_up_runtime
from fgrlhf.config import SplitConfig
from fgrlhf.train.tasks import evaluation_examples
from fgrlhf.policy import Policy, SamplingConfig
from fgrlhf.policy.checkpoint import base_checkpoint
from fgrlhf.eval.checkpoint import policy_source

part, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
set_up_runtime(1)
ckpt = "runs/sft/gemma3_270m_93"
task = TaskConfig(prompts_file="data/qa_feedback/prompts.json", prompt_format="causal", max_prompt_tokens=384, tokenizer=ckpt)
ex = evaluation_examples(task, SplitConfig(), part, None)
policy = Policy.from_pretrained(base_checkpoint(policy_source(ckpt)), "auto", 384, "cpu")
greedy = SamplingConfig(max_new_tokens=128, do_sample=False, num_samples=1)
samp = SamplingConfig(max_new_tokens=128, do_sample=True, top_k=0, top_p=0.9, temperature=0.7, num_samples=n)
torch.manual_seed(0)
with open(out, "w") as f:
    for i, e in enumerate(ex):
        t = time.time()
        g = policy.decode(policy.generate([e.prompt], greedy)).texts[0]
        t1 = time.time()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            s = policy.decode(policy.generate([e.prompt], samp)).texts
        print("greedy", round(t1 - t, 1), end=" ")
        f.write(json.dumps({"i": i, "refs": list(e.metadata["references"]), "greedy": g, "samples": s}) + "\n"); f.flush()
        print(i, round(time.time() - t, 1), flush=True)
