"""The QA-Feedback evaluation of Wu et al. (2023), on any policy.

For every test question the policy answers (greedy by default), and the answer is judged by

- **relevance ratio**: the share of its sub-sentences that R1 judges free of relevance errors;
- **factuality ratio**: the share of its sentences that R2 judges free of factual errors;
- **completeness**: R3's score, normalised with the mean/std R3 had on its training set;
- **ROUGE-Lsum** against the question's reference answers (best reference, ×100);
- **length** in words and in policy tokens.

The ratios are pooled over answers (error-free segments of all answers / segments of all
answers), so a long answer weighs by its segment count, as the paper counts them. Reward
models are the objects the trainer built (``RewardAggregator.rewards``): segmenting goes
through the same ``RewardAggregator.segment``, so R1 reads exactly the sub-sentences and R2
the sentences it was trained on. A missing reward model just leaves its metric out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgrlhf.reward.base import (
    RewardInputs,
    RewardModel,
    SegmentErrorModel,
    SequenceScoreModel,
    check_segment_scores,
)
from fgrlhf.reward.categories import QA_CATEGORIES, RATIO_CATEGORIES, SEQUENCE_CATEGORIES, is_error
from fgrlhf.segment import MultiGranularitySegmenter, Segmenter, Span

if TYPE_CHECKING:
    from fgrlhf.data.tasks import TaskExample
    from fgrlhf.policy.model import Policy, SamplingConfig

# The summary's metrics, in the order reports and plots show them.
EVAL_METRICS = ("relevance_ratio", "factuality_ratio", "completeness", "rougeLsum", "length_words",
                "length_tokens")


# --- pure metric functions ---------------------------------------------------------------

def error_free_ratio(errors: Sequence[Sequence[bool]]) -> float | None:
    """Pooled share of error-free segments: ``Σ_b #{s : ¬error[b][s]} / Σ_b |error[b]|``.

    ``errors[b]`` holds one flag per segment of answer b; an answer without segments adds
    nothing to either sum. ``None`` when there is no segment at all (the ratio is undefined).
    """
    total = sum(len(row) for row in errors)
    if total == 0:
        return None
    return sum(1 for row in errors for e in row if not e) / total


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not ``None``; ``None`` when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def count_words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def sentence_lines(text: str, sentences: Segmenter) -> str:
    """The text's sentences, one per line: the layout ROUGE-Lsum reads sentences from."""
    return "\n".join(text[s:e] for s, e in sentences(text))


@lru_cache(maxsize=1)
def _rouge_lsum_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)


def best_rouge_lsum(prediction: str, references: Sequence[str]) -> float | None:
    """``100 · max_r F1_ROUGE-Lsum(prediction, r)`` over the references.

    Inputs are newline-separated sentences (``sentence_lines``): ROUGE-Lsum takes the union
    LCS of every reference sentence with the prediction's sentences. Tokenisation is
    rouge_score's (lower-cased alphanumerics, Porter stemmer). ``None`` without references.
    """
    if not references:
        return None
    scorer = _rouge_lsum_scorer()
    return 100.0 * max(scorer.score(ref, prediction)["rougeLsum"].fmeasure for ref in references)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The summary of per-answer records (as ``evaluate_qa`` writes them).

    ``<category>_ratio`` (pooled, see ``error_free_ratio``) and ``<category>_segments`` for
    each ratio category present in the records; ``completeness``, ``rougeLsum``,
    ``length_words`` and ``length_tokens`` as means over answers (answers whose value is
    ``None`` are left out); ``n_answers``, ``empty_answers`` (share with no words) and
    ``distinct_answers`` (how many different answer texts: a policy that ignores the question
    gives few).
    """
    n = len(records)
    out: dict[str, Any] = {"n_answers": n}
    for k in RATIO_CATEGORIES:
        if n and k in records[0]:
            errors = [[seg["error"] for seg in r[k]] for r in records]
            out[f"{k}_ratio"] = error_free_ratio(errors)
            out[f"{k}_segments"] = sum(len(row) for row in errors)
    for key in (*SEQUENCE_CATEGORIES, "rougeLsum", "length_words", "length_tokens"):
        if n and key in records[0]:
            out[key] = mean_or_none([r[key] for r in records])
    out["empty_answers"] = sum(1 for r in records if r["length_words"] == 0) / n if n else None
    if n and "answer" in records[0]:
        out["distinct_answers"] = len({r["answer"].strip() for r in records})
    return out


def lead_text(passages: Sequence[Sequence[str]], words: int = 100) -> str:
    """The lead baseline's answer: the first ``words`` words of the passages' sentences (titles
    left out), in their order. An answer that merely copies the context scores this much."""
    text = " ".join(s.strip() for _, *sentences in passages for s in sentences)
    return " ".join(text.split()[:words])


def lead_baseline(examples: Sequence[TaskExample], sentences: Segmenter, words: int = 100) -> float | None:
    """Mean ROUGE-Lsum of ``lead_text`` against each example's references (examples without
    references left out)."""
    scores = []
    for ex in examples:
        refs = [sentence_lines(r, sentences) for r in ex.metadata.get("references", [])]
        if refs:
            scores.append(best_rouge_lsum(sentence_lines(lead_text(ex.metadata.get("passages", []), words), sentences),
                                          refs))
    return mean_or_none(scores)


# --- reward models → per-segment verdicts and per-answer scores ---------------------------

def segment_verdicts(reward: RewardModel, inputs: RewardInputs, spans: Sequence[Sequence[Span]]
                     ) -> list[list[dict[str, Any]]]:
    """One verdict per segment: ``{"start", "end", "text", "error"}`` plus ``error_prob`` or ``score``.

    A ``SegmentErrorModel`` (``SegmentClassifierReward``) is judged on P(error) >
    ``ERROR_THRESHOLD`` (``is_error``, the line training draws in label mode), independent
    of its ±reward values and mode. Any other reward model
    (rules, a user's class) is judged on its score: a negative score is an error, the sign
    convention of the built-in penalties.
    """
    if isinstance(reward, SegmentErrorModel):
        probs = reward.error_probs(inputs.questions(), inputs.texts, spans, inputs.metadata)
        values = [[{"error_prob": p, "error": is_error(p)} for p in row] for row in probs]
    else:
        out = reward.score(inputs, spans)
        check_segment_scores(type(reward).__name__, out, spans)
        values = [[{"score": x, "error": x < 0.0} for x in row] for row in out.rows()]
    return [
        [{"start": s, "end": e, "text": text[s:e], **v} for (s, e), v in zip(row, vals)]
        for text, row, vals in zip(inputs.texts, spans, values)
    ]


def sequence_scores(reward: RewardModel, inputs: RewardInputs, spans: Sequence[Sequence[Span]]
                    ) -> list[dict[str, float]]:
    """One score per answer: ``{"score"}``, plus ``raw`` for a ``SequenceScoreModel``.

    A ``SequenceScoreModel`` (``SequenceReward``, R3) gives ``(raw − mean) / std`` with the mean/std of its raw scores
    on its training set (its checkpoint metadata): the normalisation of training, without the
    reward's ``scale`` (a training weight, not part of the judgement), and whatever its
    ``normalize`` flag, so that runs sharing one R3 checkpoint compare. Every answer is scored,
    an empty one included (R3 reads it). Any other reward gives the sum of its segment scores,
    what the answer earned from it in training before normalisation and weighting (0 for an
    answer without segments).
    """
    if isinstance(reward, SequenceScoreModel):
        raw = reward.raw_scores(inputs.questions(), inputs.texts, inputs.metadata)
        norm = reward.meta.score_normalizer()
        return [{"score": norm.standardize(r), "raw": r} for r in raw]
    out = reward.score(inputs, spans)
    check_segment_scores(type(reward).__name__, out, spans)
    return [{"score": float(sum(row))} for row in out.rows()]


# --- the evaluation loop ----------------------------------------------------------------

def evaluate_qa(policy: Policy, examples: Sequence[TaskExample], rewards: Mapping[str, RewardModel] | None = None,
                sampling: SamplingConfig | None = None, batch_size: int = 8, progress: bool = True,
                segmenter: MultiGranularitySegmenter | None = None
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Answer every example with ``policy`` and judge the answers; returns ``(summary, records)``.

    ``examples``: ``TaskExample``s of a QA-Feedback task (metadata ``question``, ``passages``,
    ``references``). ``rewards``: reward models by category; ``relevance`` and ``factuality``
    give the error-free ratios, ``completeness`` the R3 score, other categories are not
    QA-Feedback metrics and are ignored. ``sampling`` defaults to greedy decoding, one answer
    per prompt; with ``num_samples > 1`` each sample is a record. ``segmenter`` should be the
    trainer's (``aggregator.segmenter``) when the rewards come from a trainer; its sentence
    splitter also splits sentences for ROUGE-Lsum.

    Each record: ``prompt_index`` (into ``examples``), ``sample``, ``question``, ``answer``,
    ``references``, ``relevance`` / ``factuality`` (a verdict per segment, see
    ``segment_verdicts``), ``completeness`` (see ``sequence_scores``; ``completeness_raw`` for
    R3), ``rougeLsum`` (see ``best_rouge_lsum``), ``length_words``, ``length_tokens`` (generated
    tokens including the closing EOS, as training's ``length/tokens`` counts them). The summary
    is ``summarize(records)``.
    """
    from tqdm.auto import tqdm

    from fgrlhf.policy.model import SamplingConfig
    from fgrlhf.reward.aggregate import RewardAggregator

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    sampling = sampling if sampling is not None else SamplingConfig(do_sample=False, num_samples=1)
    segmenter = segmenter if segmenter is not None else MultiGranularitySegmenter()
    used = {k: rewards[k] for k in QA_CATEGORIES if rewards and k in rewards}
    # The trainer's own segmentation code: each reward gets its granularity (or its own segmenter).
    aggregator = RewardAggregator(used, segmenter=segmenter) if used else None

    records: list[dict[str, Any]] = []
    starts = range(0, len(examples), batch_size)
    for start in tqdm(starts, desc="eval", unit="batch", disable=not progress):
        batch = examples[start : start + batch_size]
        rollout = policy.generate([ex.prompt for ex in batch], sampling)
        texts = policy.decode(rollout).texts
        lengths = rollout.response_mask.sum(dim=-1).tolist()  # [B]
        rows = rollout.prompt_index  # row b answers batch[rows[b]]
        inputs = RewardInputs([batch[i].prompt for i in rows], texts, [batch[i].metadata for i in rows])
        spans = aggregator.segment(texts) if aggregator is not None else {}
        judged = {k: (segment_verdicts if k in RATIO_CATEGORIES else sequence_scores)(r, inputs, spans[k])
                  for k, r in used.items()}
        lines = [sentence_lines(t, segmenter.sentences) for t in texts]
        questions = inputs.questions()
        samples_seen: dict[int, int] = {}
        for b, (i, text) in enumerate(zip(rows, texts)):
            meta = batch[i].metadata
            references = list(meta.get("references", []))
            sample = samples_seen.get(i, 0)
            samples_seen[i] = sample + 1
            record: dict[str, Any] = {
                "prompt_index": start + i, "sample": sample, "question": questions[b],
                "answer": text, "references": references,
            }
            for k, per_answer in judged.items():
                if k in RATIO_CATEGORIES:
                    record[k] = per_answer[b]
                else:
                    record[k] = per_answer[b]["score"]
                    if "raw" in per_answer[b]:
                        record[f"{k}_raw"] = per_answer[b]["raw"]
            ref_lines = [sentence_lines(r, segmenter.sentences) for r in references]
            record["rougeLsum"] = best_rouge_lsum(lines[b], ref_lines)
            record["length_words"] = count_words(text)
            record["length_tokens"] = int(lengths[b])
            records.append(record)
    return summarize(records), records


def write_jsonl(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per line (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, r in enumerate(records):
            try:
                line = json.dumps(r, allow_nan=False)  # NaN is not JSON: fail here, not in a reader
            except ValueError as err:
                raise ValueError(f"record {i} cannot be written to {path}: {err}") from err
            f.write(line + "\n")
    return path
