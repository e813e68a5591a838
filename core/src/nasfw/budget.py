"""Schedule lengths relative to the run.

A paper fixes its schedules for its own budget (ZARTS warms up for 10 of 50 epochs). Copied as absolute
numbers into a shorter run they silently do nothing (a warm-up longer than the search), so every
schedule length of a method is a :data:`Span`: either an absolute count (an ``int``, in the unit the
option names: epochs, steps, rounds) or a fraction of the budget it lives in (a ``float`` in [0, 1], or a
string ``"20%"``). Defaults are the papers' proportions; the papers' absolute numbers are ``paper`` presets.

    warmup: Span = 0.2           # 0.2 of the search (ZARTS: 10 of 50 epochs)
    --set optimizer.warmup=3     # exactly 3 epochs
    --set optimizer.warmup=25%   # a quarter of the search
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

from nasfw.errors import ConfigError


def _parse_span(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("a schedule length is a count (integer) or a fraction of the run (0.0-1.0 or 'N%'), "
                         "not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.endswith("%"):
                value = float(text[:-1]) / 100.0
            elif text.lstrip("+").isdigit():
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            raise ValueError(f"'{value}' is not a schedule length: give a count (e.g. 10), a fraction of the "
                             f"run (e.g. 0.2) or a percentage (e.g. '20%')") from None
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a schedule count cannot be negative")
        if value > 10**9:
            raise ValueError("a schedule count above 10^9 is not a real schedule")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"a fraction of the run must lie in [0, 1] (got {value}); write an integer for "
                             f"an absolute count")
        return value
    raise ValueError(f"a schedule length is an integer count or a fraction in [0, 1], not {type(value).__name__}")


#: An absolute count (int) or a fraction of the enclosing budget (float in [0, 1]; ``"N%"`` is accepted).
Span = Annotated[int | float, BeforeValidator(_parse_span)]


def is_fraction(span: int | float) -> bool:
    return isinstance(span, float)


def resolve(span: int | float, total: int | float, *, minimum: int = 0) -> int:
    """A span as a count: an int as given, a fraction of ``total`` rounded to the nearest count
    (never below ``minimum``, so a non-zero fraction of a short run still does something when asked to)."""
    if isinstance(span, float):
        count = math.floor(span * total + 0.5)
        return max(count, minimum) if span > 0 else 0
    return int(span)


@dataclass(frozen=True)
class Budget:
    """The search a component runs in: epochs × steps per epoch (steps are weight steps)."""

    epochs: int
    steps_per_epoch: int

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def epochs_of(self, span: int | float) -> int:
        """A span counted in epochs (an int is epochs, a fraction is of the search's epochs)."""
        return resolve(span, self.epochs)

    def steps_of(self, span: int | float, *, unit: str = "epochs") -> int:
        """A span as weight steps. An int counts ``unit`` (epochs or steps); a fraction is of all the
        search's steps, so a fraction keeps its meaning in a 1-epoch run."""
        if isinstance(span, float):
            return resolve(span, self.steps)
        return int(span) * (self.steps_per_epoch if unit == "epochs" else 1)


def refuse(setting: str, problem: str, fix: str) -> ConfigError:
    """The one-line error for a method that could not act with these settings (raised before any work)."""
    return ConfigError(f"{setting}: {problem}; {fix}")


__all__ = ["Budget", "Span", "is_fraction", "refuse", "resolve"]
