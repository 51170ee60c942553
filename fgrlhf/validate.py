"""Range checks for every numeric setting, run at start-up before any model loads.

A schema dataclass states its ranges in a ``RULES`` class variable, one short expression per
field::

    RULES: ClassVar[dict[str, str]] = {"lr": "> 0", "lam": "[0, 1]", "kl_estimator": "in k1 k2 k3"}

Forms: ``> x``, ``>= x``, ``< x``, ``<= x``, intervals ``[a, b]`` / ``(a, b]`` / ``[a, b)`` /
``(a, b)``, and ``in a b c`` (allowed values). ``None`` passes every rule (an optional
setting left unset). Besides the rules, every float anywhere in the config, and every value
of a ``dict[str, float]`` such as the reward weights, must be finite. ``validate`` collects
every violation and raises one ``ConfigError`` that names each key, its value and its range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from fgrlhf.errors import ConfigError


def _parse_number(text: str) -> float:
    return float(text.strip())


def check_rule(value: Any, rule: str) -> bool:
    """Whether ``value`` satisfies ``rule`` (see the module docstring)."""
    rule = rule.strip()
    if value is None:
        return True
    if rule.startswith("in "):
        return str(value) in rule[3:].split()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    for op in (">=", "<=", ">", "<"):
        if rule.startswith(op):
            bound = _parse_number(rule[len(op):])
            return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]
    if rule[0] in "[(" and rule[-1] in "])":
        low, high = (_parse_number(x) for x in rule[1:-1].split(","))
        above = value >= low if rule[0] == "[" else value > low
        below = value <= high if rule[-1] == "]" else value < high
        return above and below
    raise ValueError(f"unknown rule {rule!r}")


def describe(rule: str) -> str:
    rule = rule.strip()
    if rule.startswith("in "):
        return "one of " + ", ".join(rule[3:].split())
    if rule[0] in "[(":
        return f"in {rule}"
    return f"must be {rule}"


def problems(cfg: Any, schema: type, prefix: str = "") -> list[str]:
    """Every violated rule of ``cfg`` (a dataclass instance or an OmegaConf node) against
    ``schema`` and its nested dataclasses, as ``key=value: allowed range`` lines."""
    found: list[str] = []
    rules: Mapping[str, str] = getattr(schema, "RULES", {})
    for f in dataclasses.fields(schema):
        key = prefix + f.name
        value = cfg.get(f.name) if isinstance(cfg, Mapping) or hasattr(cfg, "get") else getattr(cfg, f.name)
        nested = _dataclass_type(f)
        if nested is not None and value is not None:
            found += problems(value, nested, key + ".")
            continue
        if f.name in rules and not check_rule(value, rules[f.name]):
            found.append(f"{key}={value!r}: {describe(rules[f.name])}")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(f"{key}={value!r}: must be a finite number")
        elif hasattr(value, "items"):
            for k, v in value.items():
                if isinstance(v, float) and not math.isfinite(v):
                    found.append(f"{key}.{k}={v!r}: must be a finite number")
    return found


def _dataclass_type(f: dataclasses.Field) -> type | None:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
    return type(default) if dataclasses.is_dataclass(default) else None


def validate(cfg: Any, schema: type, extra: list[str] | None = None) -> None:
    """Raise one ``ConfigError`` listing every violation (``extra``: cross-field problems the
    caller found, in the same ``key=value: ...`` form)."""
    found = problems(cfg, schema) + list(extra or [])
    if found:
        lines = "\n  ".join(found)
        raise ConfigError(f"{len(found)} setting{'s' if len(found) > 1 else ''} out of range:\n  {lines}")
