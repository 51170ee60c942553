"""An HTML report of rollouts, like the annotation interface of Wu et al. (2023).

Every answer is shown once per reward category, its segments coloured by that category's
judgement: green (error-free) or red (error) for a classifier category (R1 relevance, R2
factuality), a diverging red-white-green scale of the score for a score category (R3
completeness, any sequence-level reward). Hovering (or focusing) a segment shows its
verdict, score and reward; text between segments (whitespace) is plain. A summary per
answer and for the whole report gives segments, errors, the error-free ratio and the
reward per category.

The report is one self-contained file: inline CSS and JS, no external resource, readable
offline and without JS (the segments are rendered here; JS adds the category switcher, the
error filter and the styled tooltip, which borrows the segment's title while it shows, so
the native one does not pile on). The stylesheet and the script are package data,
``assets/report.css`` (the verdict colours filled in as ``$OK_COLOUR``, ``$ERROR_COLOUR``
and ``$UNJUDGED_COLOUR``) and ``assets/report.js``.

Two adapters build the items: ``items_from_eval_records`` (the per-answer records of
``evaluate_qa``) and ``items_from_rollouts`` (a PPO batch: texts and its ``DenseReward``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, Literal

from fgrlhf.reward.categories import RATIO_CATEGORIES, SEQUENCE_CATEGORIES
from fgrlhf.segment.base import strip_span

if TYPE_CHECKING:
    from fgrlhf.reward.aggregate import DenseReward

Kind = Literal["error", "score"]

# Colours: verdicts (light backgrounds keep black text legible) and the diverging scale's
# ends and middle (red = worse, green = better, as the verdicts).
OK_COLOUR = "#c6efce"
ERROR_COLOUR = "#ffc0bd"
UNJUDGED_COLOUR = "#e4e4e4"
SCALE_LOW = (0xE0, 0x6C, 0x5F)
SCALE_MID = (0xF7, 0xF7, 0xF7)
SCALE_HIGH = (0x5C, 0xB8, 0x72)


@cache
def _asset(name: str) -> str:
    """The text of ``fgrlhf/eval/assets/<name>``."""
    return files("fgrlhf.eval").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def report_css() -> str:
    """The report's stylesheet, with the verdict colours."""
    return Template(_asset("report.css")).substitute(
        OK_COLOUR=OK_COLOUR, ERROR_COLOUR=ERROR_COLOUR, UNJUDGED_COLOUR=UNJUDGED_COLOUR)


def report_js() -> str:
    """The report's script: the category switcher, the error filter and the tooltip."""
    return _asset("report.js")


@dataclass(frozen=True)
class Segment:
    """One judged segment ``answer[start:end]``.

    ``error``: the classifier's verdict (``None`` in a score category). ``score``: the
    judgement's number — P(error) for a classifier, the reward model's score otherwise; a
    score category colours by it. ``reward``: what the segment earned in training (``None``
    when unknown).
    """

    start: int
    end: int
    error: bool | None = None
    score: float | None = None
    reward: float | None = None


@dataclass
class CategoryJudgement:
    """One reward category's segments of one answer.

    ``kind``: ``"error"`` colours segments by ``Segment.error``, ``"score"`` by
    ``Segment.score`` on a diverging scale. ``score_name`` labels the score (``P(error)``,
    ``score``). ``policy_reward``: what the policy received from this category for the whole
    answer (weighted and normalised, summed over tokens), when known.
    """

    segments: list[Segment]
    kind: Kind = "error"
    score_name: str = "score"
    policy_reward: float | None = None


@dataclass
class ReportItem:
    """One answer: its prompt (the question), the answer text, its judgements by category,
    a short ``label`` (e.g. ``question 3 · sample 0``) and extra per-answer ``metrics``
    (ROUGE, length, ...) shown in its summary."""

    prompt: str
    answer: str
    categories: dict[str, CategoryJudgement]
    label: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


# --- adapters ------------------------------------------------------------------------------

def items_from_eval_records(records: Sequence[Mapping[str, Any]],
                            reward_values: Mapping[str, tuple[float, float] | float] | None = None
                            ) -> list[ReportItem]:
    """Report items from ``evaluate_qa``'s per-answer records.

    ``relevance`` / ``factuality`` (verdict lists ``{start, end, text, error, error_prob |
    score}``) become ``"error"`` categories whose score is ``error_prob`` (named
    ``P(error)``) or the rule reward's ``score``; ``completeness`` (one number per answer)
    becomes a ``"score"`` category with one segment over the whole answer (the sequence
    segment: the answer without its outer whitespace), absent for an empty answer or a
    ``None`` score.

    A segment's reward: a verdict's ``score`` is its reward model's output, hence its reward.
    A classifier's reward is not in the records: pass ``reward_values``, per category, the
    ``(positive, negative)`` reward of an error-free and an erroneous segment
    (``SegmentClassifierReward`` in label mode, e.g. ``(0.3, -0.3)`` for relevance) or, for a
    score category, the scale of its score (``SequenceReward.scale``, e.g. 0.3).
    """
    reward_values = dict(reward_values or {})
    items = []
    for i, r in enumerate(records):
        answer = r["answer"]
        categories: dict[str, CategoryJudgement] = {}
        for k in RATIO_CATEGORIES:
            if k not in r:
                continue
            values = reward_values.get(k)
            segments, score_name = [], "score"
            for j, v in enumerate(r[k]):
                if "text" in v and answer[v["start"]:v["end"]] != v["text"]:
                    raise ValueError(f"record {i}, {k} segment {j}: text {v['text']!r} is not "
                                     f"answer[{v['start']}:{v['end']}] = {answer[v['start']:v['end']]!r}")
                if "error_prob" in v:
                    score, score_name = v["error_prob"], "P(error)"
                else:
                    score = v.get("score")
                if isinstance(values, tuple):
                    reward = values[1] if v["error"] else values[0]
                else:
                    reward = v.get("reward", v.get("score"))
                segments.append(Segment(v["start"], v["end"], bool(v["error"]), score, reward))
            categories[k] = CategoryJudgement(segments, "error", score_name)
        for k in SEQUENCE_CATEGORIES:
            if k not in r:
                continue
            span = strip_span(answer, 0, len(answer))
            score = r[k]
            segments = []
            if span is not None and score is not None:
                scale = reward_values.get(k)
                reward = scale * score if isinstance(scale, (int, float)) else None
                segments = [Segment(span[0], span[1], None, score, reward)]
            categories[k] = CategoryJudgement(segments, "score", "score")
        label = f"question {r['prompt_index']}" if "prompt_index" in r else f"answer {i}"
        if r.get("sample"):
            label += f" · sample {r['sample']}"
        metrics = {m: r[m] for m in (*(f"{k}_raw" for k in SEQUENCE_CATEGORIES), "rougeLsum",
                                     "length_words", "length_tokens") if m in r}
        items.append(ReportItem(r.get("question", ""), answer, categories, label, metrics))
    return items


def items_from_rollouts(texts: Sequence[str], prompts: Sequence[str], reward: DenseReward,
                        score_categories: Iterable[str] = SEQUENCE_CATEGORIES) -> list[ReportItem]:
    """Report items from a PPO batch: ``PPOTrainer.collect``'s ``texts`` and ``reward``.

    ``prompts[b]`` is the prompt of row b (``[prompts[i] for i in rollout.prompt_index]``).
    Each category's segments are ``reward.spans[k][b]`` and their reward the raw score
    ``reward.raw[k]`` (the reward model's output, before normalisation and weighting). A
    category in ``score_categories`` is coloured by that score on a diverging scale; any
    other is judged by its sign, negative = error (the verdict of ``SegmentClassifierReward``
    in label mode and of the built-in penalties). Each category's ``policy_reward`` is what
    the policy received from it (``reward.per_category[b, :, k]`` summed over tokens).
    """
    B = len(texts)
    if len(prompts) != B:
        raise ValueError(f"{len(prompts)} prompts for {B} texts: pass one prompt per row")
    score_categories = set(score_categories)
    rows = {k: reward.raw[k].rows() for k in reward.categories}
    per_answer = reward.per_category.detach().float().sum(dim=1).cpu().tolist()  # [B, K]
    totals = reward.total.detach().float().sum(dim=1).cpu().tolist()  # [B]
    if len(per_answer) != B:
        raise ValueError(f"reward holds {len(per_answer)} rows for {B} texts")
    items = []
    for b in range(B):
        categories = {}
        for k_i, k in enumerate(reward.categories):
            spans, scores = reward.spans[k][b], rows[k][b]
            if len(spans) != len(scores):
                raise ValueError(f"row {b}, {k}: {len(spans)} spans but {len(scores)} scores")
            if k in score_categories:
                segments = [Segment(s, e, None, x, x) for (s, e), x in zip(spans, scores)]
                kind: Kind = "score"
            else:
                segments = [Segment(s, e, x < 0.0, x, x) for (s, e), x in zip(spans, scores)]
                kind = "error"
            categories[k] = CategoryJudgement(segments, kind, "score", per_answer[b][k_i])
        items.append(ReportItem(prompts[b], texts[b], categories, f"rollout {b}",
                                {"total reward": totals[b]}))
    return items


# --- rendering -----------------------------------------------------------------------------

def rollout_report(items: Sequence[ReportItem], out_html: str | Path, title: str = "Rollouts",
                   alerts: Sequence[str] = ()) -> Path:
    """Write the report of ``items`` to ``out_html`` (parent folders created); returns its path.
    ``alerts``: reward-hacking alerts of the run that produced the policy, shown as a banner."""
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(items, title, alerts), encoding="utf-8")
    return out


def alert_banner(alerts: Sequence[str]) -> str:
    """The report's banner listing the alerts that fired while training (empty: none)."""
    if not alerts:
        return ""
    rows = "".join(f"<li>{_esc(a)}</li>" for a in alerts)
    return (f"<div class=\"alert-banner\" role=\"alert\"><strong>Reward-hacking alerts fired while training "
            f"this policy:</strong><ul>{rows}</ul></div>\n")


def render_report(items: Sequence[ReportItem], title: str = "Rollouts", alerts: Sequence[str] = ()) -> str:
    """The report as one HTML document (see the module docstring)."""
    categories, kinds = _categories(items)
    limits = {k: _score_limit(items, k) for k in categories if kinds[k] == "score"}
    policy = any(j.policy_reward is not None for item in items for j in item.categories.values())
    for i, item in enumerate(items):
        for k, judged in item.categories.items():
            _check_segments(i, k, item.answer, judged.segments)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<title>{_esc(title)}</title>\n<style>\n{report_css()}</style>\n</head>\n<body>\n<header>\n",
        f"<h1>{_esc(title)}</h1>\n",
        alert_banner(alerts),
        f"<p class=\"meta\">{len(items)} answers · categories: "
        f"{_esc(', '.join(categories)) or 'none'}</p>\n",
        _controls(categories),
        _legend(categories, kinds, limits),
        _overall_summary(items, categories, kinds, policy),
        "</header>\n<main>\n",
    ]
    parts += [_item(i, item, categories, limits, policy) for i, item in enumerate(items)]
    parts.append("</main>\n<div id=\"tooltip\" class=\"tooltip\" role=\"tooltip\" hidden></div>\n")
    parts.append(f"<script>\n{report_js()}</script>\n</body>\n</html>\n")
    return "".join(parts)


def diverging_colour(x: float, limit: float) -> str:
    """``#rrggbb`` of ``x`` on the red-white-green scale over ``[-limit, limit]`` (clipped)."""
    t = 0.0 if limit <= 0 or not math.isfinite(x) else max(-1.0, min(1.0, x / limit))
    end = SCALE_HIGH if t > 0 else SCALE_LOW
    rgb = (round(m + abs(t) * (e - m)) for m, e in zip(SCALE_MID, end))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:+d}" if signed else str(x)
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _categories(items: Sequence[ReportItem]) -> tuple[list[str], dict[str, Kind]]:
    """Categories in first-seen order, and the kind of each (the same in every item)."""
    kinds: dict[str, Kind] = {}
    for i, item in enumerate(items):
        for k, judged in item.categories.items():
            if judged.kind not in ("error", "score"):
                raise ValueError(f"item {i}, {k}: kind must be 'error' or 'score', not {judged.kind!r}")
            if kinds.setdefault(k, judged.kind) != judged.kind:
                raise ValueError(f"item {i}: category {k!r} is {judged.kind!r} here but {kinds[k]!r} before")
    return list(kinds), kinds


def _score_limit(items: Sequence[ReportItem], k: str) -> float:
    """The scale's half-width: the largest |score| of category k in the report."""
    scores = [abs(s.score) for item in items if k in item.categories
              for s in item.categories[k].segments if s.score is not None and math.isfinite(s.score)]
    return max(scores, default=0.0)


def _check_segments(i: int, k: str, answer: str, segments: Sequence[Segment]) -> None:
    prev = 0
    for j, s in enumerate(segments):
        if not (prev <= s.start <= s.end <= len(answer)):
            raise ValueError(f"item {i}, {k} segment {j}: span ({s.start}, {s.end}) is out of order or "
                             f"out of range (answer length {len(answer)}, previous end {prev})")
        prev = s.end


def _verdict(judged: CategoryJudgement, s: Segment, limit: float) -> tuple[str, str, str]:
    """``(css class, inline style, verdict words)`` of one segment."""
    if judged.kind == "error":
        if s.error is None:
            return "seg seg-na", "", "no verdict"
        return ("seg seg-error", "", "error") if s.error else ("seg seg-ok", "", "error-free")
    if s.score is None or not math.isfinite(s.score):
        return "seg seg-na", "", "no score"
    return "seg seg-score", f"background-color:{diverging_colour(s.score, limit)}", f"score {s.score:+.3f}"


def _answer_html(item: ReportItem, k: str, judged: CategoryJudgement, limit: float) -> str:
    """The answer with category k's segments as spans and the gaps between them as text."""
    text, out, pos, n = item.answer, [], 0, len(judged.segments)
    for j, s in enumerate(judged.segments):
        out.append(_esc(text[pos:s.start]))
        cls, style, words = _verdict(judged, s, limit)
        tip = [f"{k} · segment {j + 1} of {n}", words]
        if judged.kind == "error" and s.score is not None and s.score != s.reward:
            tip.append(f"{judged.score_name} {_fmt(s.score)}")
        tip.append(f"reward {_fmt(s.reward, signed=True)}")
        attrs = {
            "class": cls, "data-category": k, "data-index": j, "data-start": s.start, "data-end": s.end,
            "data-error": "" if s.error is None else str(s.error).lower(),
            "data-score": "" if s.score is None else repr(float(s.score)),
            "data-reward": "" if s.reward is None else repr(float(s.reward)),
            "title": "\n".join(tip), "tabindex": 0,
        }
        if style:
            attrs["style"] = style
        attr_html = " ".join(f'{name}="{_esc(v)}"' for name, v in attrs.items())
        out.append(f"<span {attr_html}>{_esc(text[s.start:s.end])}</span>")
        pos = s.end
    out.append(_esc(text[pos:]))
    return "".join(out)


def _stats(judged: CategoryJudgement) -> dict[str, Any]:
    segs = judged.segments
    errors = sum(1 for s in segs if s.error)
    scores = [s.score for s in segs if s.score is not None]
    rewards = [s.reward for s in segs if s.reward is not None]
    return {
        "segments": len(segs),
        "errors": errors if judged.kind == "error" else None,
        "ratio": (1 - errors / len(segs)) if judged.kind == "error" and segs else None,
        "score": sum(scores) / len(scores) if judged.kind == "score" and scores else None,
        "reward": sum(rewards) if rewards else None,
        "policy": judged.policy_reward,
    }


def _summary_head(policy: bool) -> str:
    return ("<tr><th>category</th><th>segments</th><th>errors</th><th>error-free</th><th>score</th>"
            "<th>Σ segment reward</th>" + ("<th>policy reward</th>" if policy else "") + "</tr>")


def _summary_row(k: str, st: Mapping[str, Any], policy: bool) -> str:
    """One category's row; the policy-reward column only where some item knows it."""
    cells = [st["segments"], _fmt(st["errors"]), _fmt(st["ratio"]), _fmt(st["score"], True),
             _fmt(st["reward"], True)] + ([_fmt(st["policy"], True)] if policy else [])
    return (f'<tr data-category="{_esc(k)}"><th>{_esc(k)}</th>'
            + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")


def _item(i: int, item: ReportItem, categories: Sequence[str], limits: Mapping[str, float], policy: bool) -> str:
    stats = {k: _stats(item.categories[k]) for k in categories if k in item.categories}
    errors = sum(st["errors"] or 0 for st in stats.values())
    rows = "".join(_summary_row(k, st, policy) for k, st in stats.items())
    metrics = "".join(f"<span><b>{_esc(m)}</b> {_esc(_fmt(v))}</span>" for m, v in item.metrics.items())
    label = item.label or f"answer {i}"
    parts = [
        f'<article class="item" id="item-{i}" data-index="{i}" data-errors="{errors}">\n',
        f'<h2><span class="label">{_esc(label)}</span></h2>\n',
        f'<div class="prompt"><span class="tag">prompt</span>{_esc(item.prompt)}</div>\n',
        f'<table class="summary">{_summary_head(policy)}{rows}</table>\n',
        f'<div class="metrics">{metrics}</div>\n' if metrics else "",
    ]
    for k in categories:
        if k not in item.categories:
            continue
        judged, st = item.categories[k], stats[k]
        if judged.kind == "error":
            brief = f"{st['segments']} segments, {st['errors']} errors"
        else:
            brief = f"score {_fmt(st['score'], True)}"
        empty = "" if item.answer.strip() else '<span class="empty">(empty answer)</span>'
        parts.append(
            f'<section class="cat" data-category="{_esc(k)}" data-kind="{judged.kind}">'
            f'<h3>{_esc(k)} <span class="brief">{_esc(brief)}</span></h3>'
            f'<div class="answer" data-category="{_esc(k)}">'
            f"{_answer_html(item, k, judged, limits.get(k, 0.0))}</div>{empty}</section>\n")
    parts.append("</article>\n")
    return "".join(parts)


def _controls(categories: Sequence[str]) -> str:
    buttons = ['<button type="button" class="show active" data-show="all">all</button>']
    buttons += [f'<button type="button" class="show" data-show="{_esc(k)}">{_esc(k)}</button>'
                for k in categories]
    return ('<nav class="controls"><span>category:</span>' + "".join(buttons)
            + '<label><input type="checkbox" id="only-errors"> only answers with errors</label></nav>\n')


def _legend(categories: Sequence[str], kinds: Mapping[str, Kind], limits: Mapping[str, float]) -> str:
    rows = []
    for k in categories:
        if kinds[k] == "error":
            body = ('<span class="swatch seg-ok">error-free</span> <span class="swatch seg-error">error</span> '
                    '<span class="swatch seg-na">no verdict</span>')
        else:
            lim = limits[k]
            stops = ", ".join(diverging_colour(x, 1.0) for x in (-1.0, -0.5, 0.0, 0.5, 1.0))
            body = (f'<span class="scale-end">{_fmt(-lim, True)}</span>'
                    f'<span class="scale" style="background:linear-gradient(to right, {stops})"></span>'
                    f'<span class="scale-end">{_fmt(lim, True)}</span> score (clipped to the largest |score|)')
        rows.append(f'<div class="legend-row" data-category="{_esc(k)}"><b>{_esc(k)}</b> {body}</div>')
    rows.append('<div class="legend-row">text between segments is plain; hover or focus a segment '
                "for its verdict, score and reward</div>")
    return '<div class="legend">' + "".join(rows) + "</div>\n"


def _overall_summary(items: Sequence[ReportItem], categories: Sequence[str], kinds: Mapping[str, Kind],
                     policy: bool) -> str:
    """Pooled over answers: segments, errors, the error-free ratio (error-free segments of all
    answers / all segments, as ``error_free_ratio``), the mean score, and per-answer means of
    the rewards."""
    rows = []
    for k in categories:
        judged = [item.categories[k] for item in items if k in item.categories]
        per = [_stats(j) for j in judged]
        segs = sum(st["segments"] for st in per)
        errors = sum(st["errors"] or 0 for st in per)

        def mean(key, per=per):
            xs = [st[key] for st in per if st[key] is not None]
            return sum(xs) / len(xs) if xs else None

        st = {"segments": segs, "errors": errors if kinds[k] == "error" else None,
              "ratio": 1 - errors / segs if kinds[k] == "error" and segs else None,
              "score": mean("score"), "reward": mean("reward"), "policy": mean("policy")}
        rows.append(_summary_row(k, st, policy))
    return ('<table class="summary overall"><caption>all answers (rewards: mean per answer)</caption>'
            f'{_summary_head(policy)}{"".join(rows)}</table>\n')
