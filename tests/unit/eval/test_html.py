"""The HTML rollout report, read back with Python's html.parser: segments, text, escaping, colours."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import torch

from fgrlhf.eval.html import (
    CategoryJudgement,
    ReportItem,
    Segment,
    diverging_colour,
    items_from_eval_records,
    items_from_rollouts,
    render_report,
    rollout_report,
)
from fgrlhf.eval.qa import segment_verdicts
from fgrlhf.reward import KeywordReward, LengthReward, RewardAggregator, RewardInputs
from fgrlhf.segment import DecodedResponses, MultiGranularitySegmenter

VOID = {"meta", "input", "br", "img", "link", "hr"}


class Page(HTMLParser):
    """Collects the answers (all their text, segments included), the segments and the
    element/text structure of a report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.answers: list[dict] = []  # {"category", "text", "article"}
        self.segments: list[dict] = []  # attrs + "text" + "answer" (index into answers)
        self.tags: list[tuple[str, dict]] = []
        self.title = ""
        self.scripts = 0
        self.article: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        classes = (attrs.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        if tag == "article":
            self.article = attrs.get("id")
        if tag == "div" and "answer" in classes:
            self.answers.append({"category": attrs["data-category"], "text": "", "article": self.article})
        if tag == "span" and "seg" in classes:
            self.segments.append({**attrs, "text": "", "answer": len(self.answers) - 1})
        if tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def _inside(self, tag, cls):
        return any(t == tag and cls in (a.get("class") or "").split() for t, a in self.stack)

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "title":
            self.title += data
        if self._inside("div", "answer"):
            self.answers[-1]["text"] += data
        if self._inside("span", "seg"):
            self.segments[-1]["text"] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert not page.stack, f"unclosed elements: {page.stack}"
    return page


# Gaps of every kind between segments: double space, newline, tab, leading/trailing space.
ANSWER = "  The cat sat.  It was 3 pm;\nthen\tit left.  "
REL = [Segment(2, 14, False, 0.1, 0.3), Segment(16, 28, True, 0.9, -0.3), Segment(29, 33, None, None, None),
       Segment(34, 42, False, 0.2, 0.3)]
COMP = [Segment(2, 42, None, 0.8, 0.24)]


def _item(answer=ANSWER, prompt="Where is the cat?", rel=REL, comp=COMP, **kw) -> ReportItem:
    return ReportItem(prompt, answer, {"relevance": CategoryJudgement(list(rel), "error", "P(error)"),
                                       "completeness": CategoryJudgement(list(comp), "score")}, **kw)


def test_segments_are_the_inputs_and_the_text_is_the_answer_exactly():
    assert ANSWER[2:14] == "The cat sat." and ANSWER[34:42] == "it left." and len(ANSWER) == 44  # the spans above
    second = _item(answer="Short.", rel=[Segment(0, 6, True, 0.7, -0.3)], comp=[Segment(0, 6, None, -1.5, -0.45)])
    page = parse(render_report([_item(), second], title="t"))
    # One answer per category per item, in order; each holds the whole answer, gaps included.
    assert [(a["article"], a["category"]) for a in page.answers] == [
        ("item-0", "relevance"), ("item-0", "completeness"), ("item-1", "relevance"), ("item-1", "completeness")]
    assert [a["text"] for a in page.answers] == [ANSWER, ANSWER, "Short.", "Short."]
    # As many segments as given, each with its own text and span.
    by_answer = [[s for s in page.segments if s["answer"] == i] for i in range(4)]
    assert [len(x) for x in by_answer] == [4, 1, 1, 1]
    for seg, given in zip(by_answer[0], REL):
        assert seg["data-category"] == "relevance"
        assert (int(seg["data-start"]), int(seg["data-end"])) == (given.start, given.end)
        assert seg["text"] == ANSWER[given.start:given.end]
    assert [s["text"] for s in by_answer[0]] == ["The cat sat.", "It was 3 pm;", "then", "it left."]
    assert by_answer[1][0]["text"] == ANSWER.strip()
    assert [s["data-index"] for s in by_answer[0]] == ["0", "1", "2", "3"]


def test_gaps_are_plain_text_and_unsegmented_text_is_kept():
    # Segments need not cover the text: whatever lies outside them is shown, unmarked.
    answer = "abc <def> ghi"
    item = ReportItem("q", answer, {"r": CategoryJudgement([Segment(4, 9, True, None, -1.0)])})
    html = render_report([item])
    assert 'tabindex="0">&lt;def&gt;</span> ghi</div>' in html
    assert '<div class="answer" data-category="r">abc <span ' in html
    page = parse(html)
    assert page.answers[0]["text"] == answer
    assert [s["text"] for s in page.segments] == ["<def>"]


def test_everything_is_escaped():
    nasty = 'a < b && "c" > \'d\' </div><script>alert("x")</script> &amp; é'
    seg_end = nasty.index("</div>")
    item = ReportItem(prompt='<b>bold?</b> & "q"', answer=nasty,
                      categories={'cat"<&>': CategoryJudgement([Segment(0, seg_end, False, 0.1, 0.3),
                                                                Segment(seg_end, len(nasty), True, 0.9, -0.3)])},
                      label="<label>", metrics={"<m>": "<v>"})
    html = render_report([item], title='Report <of> "rollouts" & co')
    assert "<script>alert" not in html and "</div><script>" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;amp; é" in html
    page = parse(html)
    assert page.scripts == 1  # the report's own
    assert page.title == 'Report <of> "rollouts" & co'
    assert page.answers[0]["text"] == nasty
    assert page.answers[0]["category"] == 'cat"<&>'
    assert [s["text"] for s in page.segments] == [nasty[:seg_end], nasty[seg_end:]]
    assert {s["data-category"] for s in page.segments} == {'cat"<&>'}
    assert page.segments[0]["title"].startswith('cat"<&> · segment 1 of 2')
    assert '<span class="label">&lt;label&gt;</span>' in html
    assert "<b>&lt;m&gt;</b> &lt;v&gt;" in html


def test_colours_follow_the_verdict():
    page = parse(render_report([_item()]))
    rel = [s for s in page.segments if s["data-category"] == "relevance"]
    assert [s["class"] for s in rel] == ["seg seg-ok", "seg seg-error", "seg seg-na", "seg seg-ok"]
    assert [s["data-error"] for s in rel] == ["false", "true", "", "false"]
    assert [s["data-score"] for s in rel] == ["0.1", "0.9", "", "0.2"]
    assert [s["data-reward"] for s in rel] == ["0.3", "-0.3", "", "0.3"]
    # The stylesheet gives each verdict class its colour.
    html = render_report([_item()])
    assert ".seg-ok{background:#c6efce" in html and ".seg-error{background:#ffc0bd" in html


def _rgb(style: str) -> tuple[int, int, int]:
    hexa = style.split("#")[1][:6]
    return int(hexa[:2], 16), int(hexa[2:4], 16), int(hexa[4:], 16)


def test_scores_on_a_diverging_scale():
    items = [ReportItem("q", "good. bad. meh.", {"completeness": CategoryJudgement(
        [Segment(0, 5, None, 2.0, 0.6), Segment(6, 10, None, -4.0, -1.2), Segment(11, 15, None, 0.0, 0.0)],
        "score")})]
    segs = parse(render_report(items)).segments
    assert all(s["class"] == "seg seg-score" for s in segs)
    good, bad, meh = (_rgb(s["style"]) for s in segs)
    # Limit = largest |score| = 4: -4 is the full red end, +2 half way to green, 0 the middle.
    assert bad == (0xE0, 0x6C, 0x5F)
    assert meh == (0xF7, 0xF7, 0xF7)
    assert good == (round((0xF7 + 0x5C) / 2), round((0xF7 + 0xB8) / 2), round((0xF7 + 0x72) / 2))
    assert good[1] > good[0] and bad[0] > bad[1]
    assert diverging_colour(10.0, 4.0) == "#5cb872"  # clipped
    assert diverging_colour(1.0, 0.0) == "#f7f7f7"  # no spread: all neutral


def test_tooltip_has_verdict_score_and_reward():
    segs = parse(render_report([_item()])).segments
    assert segs[1]["title"] == "relevance · segment 2 of 4\nerror\nP(error) 0.900\nreward -0.300"
    assert segs[0]["title"] == "relevance · segment 1 of 4\nerror-free\nP(error) 0.100\nreward +0.300"
    assert segs[2]["title"] == "relevance · segment 3 of 4\nno verdict\nreward —"
    assert segs[4]["title"] == "completeness · segment 1 of 1\nscore +0.800\nreward +0.240"
    assert all(s["tabindex"] == "0" for s in segs)  # keyboard focus shows the tooltip too
    html = render_report([_item()])
    assert '<div id="tooltip" class="tooltip" role="tooltip" hidden></div>' in html


def _summary_rows(html: str, table_class: str) -> list[list[str]]:
    """The data rows of the tables with ``table_class``, as cell texts (by a second parse)."""
    rows, cur, inside = [], None, False

    class Rows(HTMLParser):
        def handle_starttag(self, tag, attrs):
            nonlocal cur, inside
            if tag == "table" and table_class in (dict(attrs).get("class") or "").split():
                inside = True
            if inside and tag == "tr" and dict(attrs).get("data-category"):
                cur = []
            if inside and tag in ("td", "th") and cur is not None:
                cur.append("")

        def handle_endtag(self, tag):
            nonlocal cur, inside
            if tag == "tr" and cur is not None:
                rows.append(cur)
                cur = None
            if tag == "table":
                inside = False

        def handle_data(self, data):
            if cur is not None and cur:
                cur[-1] += data

    Rows(convert_charrefs=True).feed(html)
    return rows


def test_summaries_per_answer_and_overall():
    second = _item(rel=[Segment(2, 14, True, 0.8, -0.3)], comp=[Segment(2, 42, None, -0.4, -0.12)])
    html = render_report([_item(), second])
    rows = _summary_rows(html, "summary")
    # category | segments | errors | error-free | score | Σ segment reward (no policy reward known)
    overall, first, then = rows[:2], rows[2:4], rows[4:6]
    # Pooled over answers: 2 errors in 5 segments, not the mean of 2/3 and 0/1.
    assert overall == [["relevance", "5", "2", "0.600", "—", "+0.000"],
                       ["completeness", "2", "—", "—", "+0.200", "+0.060"]]
    # Answer 1: 3 judged segments + 1 without verdict; 1 error of 4 segments.
    assert first == [["relevance", "4", "1", "0.750", "—", "+0.300"],
                     ["completeness", "1", "—", "—", "+0.800", "+0.240"]]
    assert then == [["relevance", "1", "1", "0.000", "—", "-0.300"],
                    ["completeness", "1", "—", "—", "-0.400", "-0.120"]]
    assert "policy reward" not in html
    page = parse(html)
    assert [a["data-errors"] for t, a in page.tags if t == "article"] == ["1", "1"]


def test_legend_and_controls():
    page = parse(render_report([_item()]))
    rows = [a["data-category"] for t, a in page.tags if "legend-row" in (a.get("class") or "") and
            "data-category" in a]
    assert rows == ["relevance", "completeness"]
    shows = [a["data-show"] for t, a in page.tags if t == "button"]
    assert shows == ["all", "relevance", "completeness"]
    # Legend swatches are not segments.
    assert len(page.segments) == 5


def test_empty_answer_and_no_items(tmp_path):
    item = ReportItem("q", "", {"relevance": CategoryJudgement([]), "completeness": CategoryJudgement([], "score")})
    out = rollout_report([item], tmp_path / "sub" / "r.html", title="empty")
    page = parse(out.read_text(encoding="utf-8"))
    assert [a["text"] for a in page.answers] == ["", ""]
    assert page.segments == []
    assert "(empty answer)" in out.read_text()
    assert parse(render_report([])).answers == []


def test_bad_segments_are_refused():
    with pytest.raises(ValueError, match=r"item 0, r segment 1: span \(3, 5\) is out of order"):
        render_report([ReportItem("q", "abcdef", {"r": CategoryJudgement([Segment(0, 4), Segment(3, 5)])})])
    with pytest.raises(ValueError, match="out of range"):
        render_report([ReportItem("q", "abc", {"r": CategoryJudgement([Segment(0, 4)])})])
    with pytest.raises(ValueError, match="'r' is 'score' here but 'error' before"):
        render_report([ReportItem("q", "a", {"r": CategoryJudgement([])}),
                       ReportItem("q", "a", {"r": CategoryJudgement([], "score")})])


# --- adapters --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def segmenter():
    return MultiGranularitySegmenter()


def test_items_from_eval_records(segmenter):
    texts = ["The sky is blue. Grass is red, and the sun is hot.", "  "]
    inputs = RewardInputs(["q1", "q2"], texts, [{"question": "Q1?"}, {"question": "Q2?"}])
    sentences = segmenter(texts, {"sentence"})["sentence"]
    # Real verdicts as evaluate_qa writes them (a rule reward: a score, negative = error) ...
    factuality = segment_verdicts(KeywordReward(["red"], hit=-0.5, miss=0.5), inputs, sentences)
    # ... and a classifier's, with P(error).
    relevance = [[{"start": 0, "end": 16, "text": "The sky is blue.", "error": False, "error_prob": 0.2},
                  {"start": 17, "end": 50, "text": texts[0][17:50], "error": True, "error_prob": 0.7}], []]
    records = [{"prompt_index": 0, "sample": 0, "question": "Q1?", "answer": texts[0], "references": [],
                "relevance": relevance[0], "factuality": factuality[0], "completeness": 0.5,
                "completeness_raw": 1.25, "rougeLsum": 40.0, "length_words": 11, "length_tokens": 14},
               {"prompt_index": 1, "sample": 1, "question": "Q2?", "answer": texts[1], "references": [],
                "relevance": relevance[1], "factuality": factuality[1], "completeness": -1.0,
                "completeness_raw": 0.0, "rougeLsum": 0.0, "length_words": 0, "length_tokens": 1}]
    items = items_from_eval_records(records, reward_values={"relevance": (0.3, -0.3), "completeness": 0.3})
    first = items[0]
    assert (first.prompt, first.answer, first.label) == ("Q1?", texts[0], "question 0")
    assert items[1].label == "question 1 · sample 1"
    assert first.metrics == {"completeness_raw": 1.25, "rougeLsum": 40.0, "length_words": 11, "length_tokens": 14}
    assert first.categories["relevance"].segments == [Segment(0, 16, False, 0.2, 0.3), Segment(17, 50, True, 0.7, -0.3)]
    assert first.categories["relevance"].score_name == "P(error)"
    assert first.categories["factuality"].segments == [Segment(0, 16, False, 0.5, 0.5), Segment(17, 50, True, -0.5, -0.5)]
    assert first.categories["completeness"].kind == "score"
    assert first.categories["completeness"].segments == [Segment(0, 50, None, 0.5, 0.15)]
    assert items[1].categories["completeness"].segments == []  # no text, no segment
    page = parse(render_report(items))
    assert [a["text"] for a in page.answers] == [texts[0]] * 3 + [texts[1]] * 3
    assert len(page.segments) == 5
    # Without reward values a classifier segment's reward is unknown, a rule's is its score.
    bare = items_from_eval_records(records)[0]
    assert bare.categories["relevance"].segments[0].reward is None
    assert bare.categories["factuality"].segments[1].reward == -0.5
    assert bare.categories["completeness"].segments[0].reward is None


def test_eval_records_must_match_their_answer():
    record = {"answer": "abc def", "relevance": [{"start": 0, "end": 3, "text": "xyz", "error": False}]}
    with pytest.raises(ValueError, match="record 0, relevance segment 0: text 'xyz'"):
        items_from_eval_records([record])


def _decoded_by_words(texts: list[str]) -> DecodedResponses:
    """One 'token' per whitespace-separated word: a span closes at its last word's index."""
    char_ends = [[i + 1 for i, ch in enumerate(t) if not ch.isspace() and (i + 1 == len(t) or t[i + 1].isspace())]
                 for t in texts]
    return DecodedResponses(list(texts), char_ends, [list(range(len(e))) for e in char_ends],
                            max(len(e) for e in char_ends))


def test_items_from_rollouts_of_a_real_aggregator(segmenter):
    texts = ["The cat sat. It was 3 pm.\nThen it left.", "Hello   world."]
    prompts = ["p0", "p1"]
    agg = RewardAggregator({"relevance": KeywordReward(["pm"], granularity="sentence", hit=-1.0, miss=0.5),
                            "completeness": LengthReward(target_words=4)},
                           weights={"relevance": 2.0, "completeness": 0.5}, segmenter=segmenter)
    reward = agg(RewardInputs(prompts, texts), _decoded_by_words(texts))
    items = items_from_rollouts(texts, prompts, reward)
    assert [it.prompt for it in items] == prompts and [it.label for it in items] == ["rollout 0", "rollout 1"]
    rel = items[0].categories["relevance"]
    assert rel.kind == "error"
    assert rel.segments == [Segment(0, 12, False, 0.5, 0.5), Segment(13, 25, True, -1.0, -1.0),
                            Segment(26, 39, False, 0.5, 0.5)]
    # What the policy received: weight 2 × (0.5 - 1 + 0.5); length 10 words vs 4: 0.5 × -6/4.
    assert rel.policy_reward == pytest.approx(0.0)
    comp = items[0].categories["completeness"]
    assert comp.kind == "score" and comp.segments == [Segment(0, 39, None, -1.5, -1.5)]
    assert comp.policy_reward == pytest.approx(-0.75)
    assert items[0].metrics["total reward"] == pytest.approx(-0.75)
    assert items[1].categories["relevance"].segments == [Segment(0, 14, False, 0.5, 0.5)]
    html = render_report(items)
    page = parse(html)
    assert [a["text"] for a in page.answers] == [texts[0], texts[0], texts[1], texts[1]]
    # The summaries gain the policy's reward: overall (mean per answer), then per answer.
    rows = _summary_rows(html, "summary")
    # (0 + 0.5) / 2 and (2 × 0 + 2 × 0.5) / 2
    assert rows[0] == ["relevance", "4", "1", "0.750", "—", "+0.250", "+0.500"]
    assert rows[2] == ["relevance", "3", "1", "0.667", "—", "+0.000", "+0.000"]
    assert rows[3] == ["completeness", "1", "—", "—", "-1.500", "-1.500", "-0.750"]
    assert [s["class"] for s in page.segments[:3]] == ["seg seg-ok", "seg seg-error", "seg seg-ok"]
    with pytest.raises(ValueError, match="1 prompts for 2 texts"):
        items_from_rollouts(texts, prompts[:1], reward)


def test_rollout_report_of_a_hand_made_dense_reward(tmp_path):
    from fgrlhf.reward.aggregate import DenseReward
    from fgrlhf.reward.base import SegmentScores

    texts = ["a b", "c"]
    per_category = torch.zeros(2, 3, 1)
    per_category[0, 0, 0], per_category[0, 2, 0], per_category[1, 0, 0] = 0.3, -0.3, 0.3
    reward = DenseReward(per_category.sum(-1), per_category, ["relevance"],
                         {"relevance": SegmentScores.from_lists([[0.3, -0.3], [0.3]])},
                         {"relevance": [[(0, 1), (2, 3)], [(0, 1)]]})
    out = rollout_report(items_from_rollouts(texts, ["x", "y"], reward), tmp_path / "r.html")
    page = parse(out.read_text(encoding="utf-8"))
    assert [s["class"] for s in page.segments] == ["seg seg-ok", "seg seg-error", "seg seg-ok"]
    assert [a["text"] for a in page.answers] == texts


def test_self_contained():
    html = render_report([_item()])
    # Inline CSS and JS only: nothing fetched, nothing linked.
    for needle in ("http://", "https://", "src=", "href=", "<link", "@import", "url("):
        assert needle not in html
    page = parse(html)
    assert page.scripts == 1
    assert [t for t, _ in page.tags].count("style") == 1
