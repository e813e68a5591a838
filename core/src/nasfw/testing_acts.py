"""The "every method acts" matrix: each installed optimizer × selector on real spaces, and each shrinker, run
through the engine at a tiny size, must *act* — as each component itself defines it (``acted(activity)``):
α moved for an optimizer that updates α, every decision made by its scores, the space shrank.

The matrix is generated from the registry, so a newly installed plugin is covered without editing a test.
Pairs the components declare meaningless (``Optimizer.trains``, ``Selector.needs_search``: a selector that
reads a search after an optimizer that does not search) come back with a ``skip`` reason. Sizes come from
each component's ``tiny`` preset (:mod:`nasfw.presets`) under a 1-epoch run of a few steps; a component
without one runs on its defaults. Exposed as :func:`nasfw.testing.acts_matrix` / :func:`nasfw.testing.check_acts`::

    CASES = kit.acts_matrix()

    @pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
    def test_every_method_acts(case):
        if case.skip:
            pytest.skip(case.skip)
        kit.check_acts(case)
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasfw.errors import ConfigError
from nasfw.registry import Registry, get_registry

#: Spaces of the optimizer × selector cases, and the space (and optimizer, selector) of the shrinker cases.
SPACES = ("darts", "nb201")
SHRINKER_SPACE = "nb201"
SHRINKER_PAIR = ("darts", "magnitude")


class ActsError(AssertionError):
    """A component did not act (its ``acted`` said why) or the run failed; the message names the case."""


@dataclass(frozen=True)
class ActsCase:
    space: str
    optimizer: str
    selector: str
    shrinker: str | None = None
    #: why the components declare this combination meaningless (then the case is skipped, not dropped)
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.space}/{self.optimizer}/{self.selector}" + (f"/{self.shrinker}" if self.shrinker else "")


def acts_matrix(registry: Registry | None = None, spaces: tuple[str, ...] = SPACES,
                shrinker_space: str = SHRINKER_SPACE, shrinker_pair: tuple[str, str] = SHRINKER_PAIR) -> list[ActsCase]:
    """Every registered optimizer × selector on each installed space of ``spaces``, then every registered
    shrinker on ``shrinker_space`` in front of ``shrinker_pair``. Missing spaces are left out (a plugin's
    own matrix may pass its space)."""
    from nasfw.engine import meaningless

    reg = registry or get_registry()
    installed = set(reg.names("search_space"))
    optimizers = {n: reg.create("optimizer", n) for n in reg.names("optimizer")}
    selectors = {n: reg.create("selector", n) for n in reg.names("selector")}
    cases = []
    for space in (s for s in spaces if s in installed):
        for o, opt in optimizers.items():
            for s, sel in selectors.items():
                cases.append(ActsCase(space, o, s, skip=meaningless(opt, sel, 1, reg)))
    if shrinker_space in installed:
        pair = shrinker_pair
        if pair[0] not in optimizers or pair[1] not in selectors:  # fall back to the first pair that can act
            pair = next(((c.optimizer, c.selector) for c in cases if c.skip is None), pair)
        for shr in reg.names("shrinker"):
            cases.append(ActsCase(shrinker_space, pair[0], pair[1], shr))
    return cases


def acts_config(case: ActsCase, registry: Registry | None = None, *, epochs: int = 1, steps: int = 2,
                batch_size: int = 16, dataset: str = "digits", seed: int = 0) -> Any:
    """The run config of a case: the components' ``tiny`` presets over a run of ``epochs`` × ``steps``."""
    from nasfw.config import merge_config
    from nasfw.presets import merge_with_preset

    base: dict[str, Any] = {
        "space": {"name": case.space}, "optimizer": {"name": case.optimizer}, "selector": {"name": case.selector},
        "dataset": {"name": dataset}, "device": "cpu", "seed": seed,
        "search": {"epochs": epochs, "steps_per_epoch": steps, "batch_size": batch_size, "eval_batches": 1},
        "log": {"progress": "none", "tensorboard": False, "plots": False},
    }
    if case.shrinker:
        base["shrinker"] = {"name": case.shrinker}
    try:
        return merge_with_preset("tiny", base=base, registry=registry or get_registry())[0]
    except ConfigError as exc:
        if "has a preset 'tiny'" not in str(exc):
            raise
        return merge_config(base=base)  # no component has a tiny preset: defaults


def check_acts(case: ActsCase, registry: Registry | None = None, *, out_dir: str | Path | None = None,
               **sizes: Any) -> dict[str, Any]:
    """Run a case through the engine and check that every component acted; returns the run's summary."""
    from nasfw.engine import execute, prepare

    reg = registry or get_registry()
    config = acts_config(case, reg, **sizes)
    with tempfile.TemporaryDirectory(prefix="nasfw-acts-") as tmp:
        run = prepare(config, reg, Path(out_dir) if out_dir is not None else Path(tmp), quiet=True)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*searches a product space.*")
                summary = execute(run)
        except Exception as exc:
            raise ActsError(f"{case.id}: the run failed: {type(exc).__name__}: {exc}") from exc
    activity = summary.get("activity", {})
    problems = []
    parts: list[tuple[str, Any]] = [("optimizer", run.optimizer), ("selector", run.selector)]
    if case.shrinker:
        parts.append(("shrinker", reg.create("shrinker", config.shrinker, run.ctx)))
    for kind, comp in parts:
        why = comp.acted(activity)
        if why:
            problems.append(f"{kind} '{comp.name}': {why}")
    if problems:
        raise ActsError(f"{case.id} did not act: " + "; ".join(problems) + f" (activity: {_brief(activity)})")
    return summary


def _brief(activity: dict[str, Any]) -> str:
    import json

    text = json.dumps({k: v for k, v in activity.items() if k != "plan"}, default=str)
    return text if len(text) < 600 else text[:597] + "..."


__all__ = ["SHRINKER_PAIR", "SHRINKER_SPACE", "SPACES", "ActsCase", "ActsError", "acts_config", "acts_matrix",
           "check_acts"]
