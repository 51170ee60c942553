"""ROUGE-Lsum of greedy, single-sample, oracle and minimum-Bayes-risk answers (the candidate
that agrees most with the others by ROUGE-Lsum; "+g": the greedy answer is a candidate too)
from samples.py output.    .venv/bin/python experiments/gemma_sft/mbr/analyse.py dev8.jsonl"""
import json, sys, itertools, statistics as st
from fgrlhf.eval.qa import best_rouge_lsum, sentence_lines
from fgrlhf.segment import MultiGranularitySegmenter
seg = MultiGranularitySegmenter().sentences
import gzip
rows = [json.loads(l) for l in (gzip.open if sys.argv[1].endswith(".gz") else open)(sys.argv[1], "rt")]
L = lambda t: sentence_lines(t, seg)
def mbr(cands, pseudo):
    lc = [L(c) for c in cands]; lp = [L(p) for p in pseudo]
    best, bi = -1, 0
    for i, c in enumerate(lc):
        u = sum(best_rouge_lsum(c, [p]) for j, p in enumerate(lp) if pseudo[j] is not cands[i])
        if u > best: best, bi = u, i
    return cands[bi]
def score(t, refs): return best_rouge_lsum(L(t), [L(r) for r in refs])
res = {"greedy": [], "sample0": [], "oracle": []}
for n in (4, 8):
    res[f"mbr{n}"] = []; res[f"mbr{n}+g"] = []
for r in rows:
    g, s, refs = r["greedy"], r["samples"], r["refs"]
    res["greedy"].append(score(g, refs)); res["sample0"].append(score(s[0], refs))
    res["oracle"].append(max(score(x, refs) for x in s + [g]))
    for n in (4, 8):
        if len(s) < n: continue
        res[f"mbr{n}"].append(score(mbr(s[:n], s[:n]), refs))
        res[f"mbr{n}+g"].append(score(mbr(s[:n] + [g], s[:n] + [g]), refs))
print(len(rows), {k: round(st.mean(v), 2) for k, v in res.items() if v})
print("words greedy", round(st.mean(len(r["greedy"].split()) for r in rows), 1), "sample", round(st.mean(len(x.split()) for r in rows for x in r["samples"]), 1))
