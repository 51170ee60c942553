"""Monitors read what the answers look like; alerts fire on the rules' conditions only."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.eval.alerts import AlertRule, Alerts, rule_fires
from fgrlhf.eval.monitors import category_monitors, repeated_ngram_rate, text_monitors


def test_text_monitors_count_segments_words_and_repeats():
    texts = ["One two three. Four five.", "", "a b c a b c"]
    spans = {"sentence": [[(0, 14), (15, 25)], [], [(0, 11)]]}
    m = text_monitors(texts, spans)
    assert m["monitor/length_words"] == pytest.approx(11 / 3)
    assert m["monitor/empty_rate"] == pytest.approx(1 / 3)
    assert m["monitor/segments_per_answer/sentence"] == pytest.approx(1.0)
    assert m["monitor/words_per_segment/sentence"] == pytest.approx(11 / 3)
    # "a b c a b c": 4 trigrams, 1 repeats ("a b c"); "One two three. Four five.": 3, none.
    assert m["monitor/repeated_3gram_rate"] == pytest.approx(1 / 7)
    assert repeated_ngram_rate([]) == 0.0


def test_category_monitors_error_rate_and_reward_share():
    raw = {"relevance": (torch.tensor([[0.3, -0.3, 0.0], [-0.3, 0.0, 0.0]]), torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()),
           "length": (torch.tensor([[0.5], [-1.0]]), torch.tensor([[1], [1]]).bool())}
    per_category = torch.zeros(2, 4, 2)
    per_category[0, 1, 0], per_category[1, 0, 0] = 0.3, -0.9  # relevance: Σ = −0.6
    per_category[0, 3, 1] = 0.2  # length: Σ = 0.2
    m = category_monitors(raw, per_category, ["relevance", "length"])
    assert m["monitor/error_rate/relevance"] == pytest.approx(2 / 3)
    assert m["monitor/error_rate/length"] == pytest.approx(1 / 2)
    assert m["monitor/reward_share/relevance"] == pytest.approx(0.75)
    assert m["monitor/reward_share/length"] == pytest.approx(0.25)


def test_bound_and_ratio_rules():
    h = [{"s": 2.0, "kl": 1.0}, {"s": 3.9, "kl": 5.0}, {"s": 4.1, "kl": 11.0}]
    assert rule_fires(AlertRule("infl", "s", above_initial=2.0), h[:2]) is None
    assert "4.1 > 2 × initial 2" in rule_fires(AlertRule("infl", "s", above_initial=2.0), h)
    assert "kl = 11 > 10" in rule_fires(AlertRule("kl", "kl", above=10), h)
    assert rule_fires(AlertRule("kl", "kl", above=10), h[:2]) is None
    assert rule_fires(AlertRule("empty", "missing", above=0.2), h) is None


def test_a_reward_rising_while_its_twin_falls():
    rule = AlertRule("twin", rising="reward/relevance", falling="monitor/rouge", window=3)
    up_down = [{"reward/relevance": r, "monitor/rouge": g} for r, g in [(0.1, 20), (0.2, 19), (0.3, 18)]]
    up_up = [{"reward/relevance": r, "monitor/rouge": g} for r, g in [(0.1, 20), (0.2, 21), (0.3, 22)]]
    assert "rose by 0.2 while monitor/rouge fell by 2" in rule_fires(rule, up_down)
    assert rule_fires(rule, up_up) is None
    assert rule_fires(rule, up_down[:2]) is None  # not a full window yet


def test_alerts_flag_every_iteration_and_warn_once_when_a_rule_starts_firing():
    alerts = Alerts([AlertRule("empty", "e", above=0.2)])
    flags, warnings = [], []
    for e in (0.0, 0.3, 0.5, 0.1, 0.4):
        m = {"e": e}
        warnings.append(alerts.check(m))
        flags.append(m["alert/empty"])
    assert flags == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert [len(w) for w in warnings] == [0, 1, 0, 0, 1]
    restored = Alerts([AlertRule("empty", "e", above=0.2)])
    restored.load_state_dict(alerts.state_dict())
    assert restored.firing == {"empty"} and len(restored.history) == 5
    with pytest.raises(ValueError, match="distinct"):
        Alerts([AlertRule("a", "x"), AlertRule("a", "y")])


def test_an_observed_initial_evaluation_is_the_baseline_of_eval_rules():
    rule = AlertRule(name="eval_inflation", metric="eval/sentences", above_initial=1.5)
    alerts = Alerts([rule])
    alerts.observe({"eval/sentences": 4.0, "eval/note": "text is dropped"})
    first = {"reward/total": 1.0}  # an iteration without an evaluation: nothing to compare
    assert alerts.check(first) == [] and first["alert/eval_inflation"] == 0.0
    at_5 = {"reward/total": 1.2, "eval/sentences": 6.5}  # 6.5 > 1.5 × 4 (the observed initial)
    assert alerts.check(at_5) == ["alert eval_inflation: eval/sentences = 6.5 > 1.5 × initial 4"]
    # Without the initial evaluation the first evaluation would be its own baseline.
    unobserved = Alerts([rule])
    assert unobserved.check({"eval/sentences": 6.5}) == []
    assert alerts.state_dict()["history"][0] == {"eval/sentences": 4.0}


def test_rouge_as_a_monitor_only_reward():
    from fgrlhf.eval.rewards import RougeReward
    from fgrlhf.reward import RewardInputs

    reward = RougeReward()
    inputs = RewardInputs(["q", "q", "q"], ["The cat sat on the mat.", "Dogs bark.", "x"],
                          [{"references": ["The cat sat on the mat."]}, {"references": ["The cat sat."]}, {}])
    rows = reward.score(inputs, [[(0, 23)], [(0, 10)], [(0, 1)]]).rows()
    assert rows[0] == [pytest.approx(100.0)] and rows[1] == [0.0] and rows[2] == [0.0]


def test_learning_curves_get_monitor_panels_and_alert_marks(tmp_path):
    import json

    from fgrlhf.eval.plots import alert_steps, curve_panels, plot_learning_curves

    records = [{"step": i, "reward/total": 0.1 * i, "monitor/segments_per_answer/sentence": 2.0 + i,
                "monitor/segments_per_answer/subsentence": 3.0 + i, "alert/inflation": float(i >= 2)}
               for i in range(4)]
    assert ("segments per answer", ["monitor/segments_per_answer/sentence",
                                    "monitor/segments_per_answer/subsentence"]) in curve_panels(records)
    assert alert_steps(records) == {"inflation": [2, 3]}
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert plot_learning_curves(path, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_html_report_carries_the_alert_banner():
    from fgrlhf.eval.html import render_report

    html = render_report([], "run", alerts=["inflation: segments per answer 7 > 2 × initial 3"])
    assert 'class="alert-banner"' in html and "inflation: segments per answer 7" in html
    assert 'class="alert-banner"' not in render_report([], "run")
