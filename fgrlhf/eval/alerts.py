"""Declarative alerts on the training metrics: a warning, a flag and a marker when a rule fires.

A rule (``AlertRule``) watches one metric of ``metrics.jsonl`` and fires when it is

- ``above`` / ``below`` a bound (e.g. ``monitor/empty_rate`` above 0.2, ``kl/sequence``
  above 10);
- ``above_initial`` / ``below_initial`` times its value at the first iteration (e.g.
  sentences per answer above 2× the initial policy's);
- ``rising`` while ``falling`` falls: over the last ``window`` iterations the first metric
  (an optimised reward) went up and the second (its monitor-only twin) went down.

Rules may watch the held-out evaluation's keys (``eval/...``) as well as the rollouts'. The
evaluation before training (``Alerts.observe``) is their "initial" value, so a ratio rule on
``eval/monitor/segments_per_answer/sentence`` compares the greedy answers with the initial
policy's: the rollouts' few samples can miss a drift that the greedy answers show.

``Alerts.check`` runs every rule on each iteration's metrics and adds ``alert/<name>`` = 1.0
(firing) or 0.0 to them; the run prints a warning line when a rule starts firing, the
learning curves mark the iterations, and both reports carry a banner. With
``stop_on_alert`` the run ends after the iteration that fired, its last checkpoint intact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class AlertRule:
    RULES: ClassVar[dict[str, str]] = {"above_initial": "> 0", "below_initial": "> 0", "window": ">= 2"}

    name: str = ""
    metric: str = ""  # the watched metric (bounds and ratios)
    above: float | None = None
    below: float | None = None
    above_initial: float | None = None  # fires when metric > above_initial × its first value
    below_initial: float | None = None
    rising: str | None = None  # with ``falling``: this one rising ...
    falling: str | None = None  # ... while this one falls, over ``window`` iterations
    window: int = 5


@dataclass
class AlertConfig:
    rules: list[AlertRule] = field(default_factory=list)
    stop_on_alert: bool = False


def rule_fires(rule: AlertRule, history: Sequence[Mapping[str, float]]) -> str | None:
    """Why ``rule`` fires on the latest entry of ``history`` (a message), or ``None``."""
    if not history:
        return None
    now = history[-1]
    value = now.get(rule.metric) if rule.metric else None
    if value is not None:
        if rule.above is not None and value > rule.above:
            return f"{rule.metric} = {value:.4g} > {rule.above:.4g}"
        if rule.below is not None and value < rule.below:
            return f"{rule.metric} = {value:.4g} < {rule.below:.4g}"
        first = next((h[rule.metric] for h in history if rule.metric in h), None)
        if first is not None and first > 0:
            if rule.above_initial is not None and value > rule.above_initial * first:
                return f"{rule.metric} = {value:.4g} > {rule.above_initial:g} × initial {first:.4g}"
            if rule.below_initial is not None and value < rule.below_initial * first:
                return f"{rule.metric} = {value:.4g} < {rule.below_initial:g} × initial {first:.4g}"
    if rule.rising and rule.falling:
        seen = [h for h in history if rule.rising in h and rule.falling in h][-rule.window:]
        if len(seen) >= rule.window:
            up = seen[-1][rule.rising] - seen[0][rule.rising]
            down = seen[-1][rule.falling] - seen[0][rule.falling]
            if up > 0 and down < 0:
                return (f"{rule.rising} rose by {up:.4g} while {rule.falling} fell by {-down:.4g} "
                        f"over {rule.window} iterations")
    return None


class Alerts:
    """The rules' state over a run: the metric history they read and which are firing."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"alert rules need distinct, non-empty names; got {names}")
        self.rules = list(rules)
        self.history: list[dict[str, float]] = []
        self.firing: set[str] = set()

    def observe(self, metrics: Mapping[str, float]) -> None:
        """Records metrics measured before the first iteration (the initial evaluation)
        without checking the rules: they become the ratio rules' initial values."""
        self.history.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    def check(self, metrics: dict[str, float]) -> list[str]:
        """Adds ``alert/<name>`` flags to ``metrics``; returns the warnings of rules that
        started firing at this iteration."""
        self.observe(metrics)
        started = []
        for rule in self.rules:
            why = rule_fires(rule, self.history)
            metrics[f"alert/{rule.name}"] = 1.0 if why else 0.0
            if why and rule.name not in self.firing:
                started.append(f"alert {rule.name}: {why}")
            (self.firing.add if why else self.firing.discard)(rule.name)
        return started

    def state_dict(self) -> dict:
        return {"history": self.history, "firing": sorted(self.firing)}

    def load_state_dict(self, state: Mapping) -> None:
        self.history = [dict(h) for h in state["history"]]
        self.firing = set(state["firing"])
