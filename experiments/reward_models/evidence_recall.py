"""Two measurements on the bundled QA-Feedback questions, written as JSON.

1. Recall@k of the evidence retrievers (``fgrlhf.reward.evidence``): for every
   ``Wrong-Grounding`` span whose explanation names passage/sentence ids, the query is the
   prediction-1 sentence that holds most of the span, the candidates are the question's passage
   sentences (titles excluded), and a hit at k means one of the named sentences is among the
   retriever's k best.
2. How grounded the gold and corrected answers are: for each of their sentences, the share of
   its words (lower-cased multiset) found in the question's passages taken together, and in
   the best single passage sentence.

    .venv/bin/python experiments/reward_models/evidence_recall.py [--split-questions test] > out.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from fgrlhf.data import load_feedback
from fgrlhf.data.rm_examples import grounding_evidence
from fgrlhf.paths import DATA_DIR
from fgrlhf.reward.evidence import Retriever
from fgrlhf.segment import Granularity, MultiGranularitySegmenter, make_sentence_segmenter
from fgrlhf.segment.words import containment, word_bag

KS = (1, 3, 5)


def _sentence_ids(passages):
    return [(p + 1, s + 1) for p, psg in enumerate(passages) for s in range(len(psg) - 1)]


def recall_at_k(data, segmenter, modes):
    queries = []  # (record, query sentence, gold indices into the passage sentences)
    for ex in data:
        text = ex.predictions[0]
        spans = segmenter([text], [Granularity.SENTENCE])[Granularity.SENTENCE][0]
        ids = _sentence_ids(ex.passages)
        index = {sid: i for i, sid in enumerate(ids)}
        for e in ex.feedback.errors:
            gold = {index[g] for g in grounding_evidence(e.explanation) if g in index}
            if e.error_type != "Wrong-Grounding" or not gold or not spans:
                continue
            s, t = max(spans, key=lambda sp: min(sp[1], e.end) - max(sp[0], e.start))
            queries.append((ex, text[s:t], gold))
    out = {"n_queries": len(queries)}
    for mode in modes:
        retriever = Retriever(mode)
        hits = Counter()
        for ex, q, gold in queries:
            sentences = [s for psg in ex.passages for s in psg[1:]]
            (ranked,) = retriever.rank([q], sentences)
            for k in KS:
                hits[k] += bool(gold & set(ranked[:k]))
        out[mode] = {f"recall@{k}": round(hits[k] / len(queries), 3) for k in KS}
    n_cand = [sum(len(p) - 1 for p in ex.passages) for ex, _, _ in queries]
    out["candidates_per_question_mean"] = round(sum(n_cand) / len(n_cand), 1)
    out["random@k"] = {f"recall@{k}": round(sum(min(1.0, k * len(g) / n) for (_, _, g), n in zip(queries, n_cand))
                                            / len(queries), 3) for k in KS}
    return out


def groundedness(data, segmenter):
    rows = {"gold": [], "corrected": [], "corrected_changed": [], "prediction_1_no_error": []}
    for ex in data:
        bags = [word_bag(s) for psg in ex.passages for s in psg[1:]]
        union = sum(bags, Counter())
        pred1 = ex.predictions[0]
        p1_spans = segmenter([pred1], [Granularity.SENTENCE])[Granularity.SENTENCE][0]
        p1_sents = {pred1[s:e] for s, e in p1_spans}
        errs = [(e.start, e.end) for e in ex.feedback.errors]
        for name, text in (("gold", ex.gold), ("corrected", ex.feedback.corrected), ("p1", pred1)):
            for s, e in segmenter([text], [Granularity.SENTENCE])[Granularity.SENTENCE][0]:
                b = word_bag(text[s:e])
                if not b:
                    continue
                row = (containment(b, union), max((containment(b, x) for x in bags), default=0.0))
                if name == "p1":
                    if not any(a < e and s < z for a, z in errs):
                        rows["prediction_1_no_error"].append(row)
                    continue
                rows[name].append(row)
                if name == "corrected" and text[s:e] not in p1_sents:
                    rows["corrected_changed"].append(row)

    def summary(values):
        n = len(values)
        return {"n_sentences": n,
                "mean_in_passages": round(sum(v[0] for v in values) / n, 3),
                "share_in_passages_ge_0.8": round(sum(v[0] >= 0.8 for v in values) / n, 3),
                "share_in_passages_ge_0.9": round(sum(v[0] >= 0.9 for v in values) / n, 3),
                "mean_best_sentence": round(sum(v[1] for v in values) / n, 3),
                "share_best_sentence_ge_0.8": round(sum(v[1] >= 0.8 for v in values) / n, 3)}

    return {k: summary(v) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feedback", default=str(DATA_DIR / "qa_feedback" / "feedback.json"))
    ap.add_argument("--retrievers", default="bm25,minilm,hybrid")
    args = ap.parse_args()
    data = load_feedback(args.feedback)
    segmenter = MultiGranularitySegmenter(make_sentence_segmenter("sentencizer"))
    print(json.dumps({"recall": recall_at_k(data, segmenter, args.retrievers.split(",")),
                      "groundedness": groundedness(data, segmenter)}, indent=1))


if __name__ == "__main__":
    main()
