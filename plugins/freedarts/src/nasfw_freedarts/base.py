"""The public base of saliency selectors: seeded, repeatable scoring, the signal guard, plan and activity.

A third-party saliency selector subclasses :class:`SaliencySelector`, names its ``measure`` and
implements :meth:`SaliencySelector.score_once`; it inherits everything else, the guard included::

    from nasfw_freedarts import SaliencyConfig, SaliencySelector, in_place

    class GradNormSelector(SaliencySelector):
        measure = "grad-norm"

        class Config(SaliencyConfig):
            batch_size: int = 64

        def score_once(self, supernet, run, repeat, dtype):
            x, y = self.batch(run, self.config.batch_size, repeat)
            with in_place(supernet, dtype) as scratch:   # scored in place, restored exactly
                ...
                return finalize(scratch.net, scores, self.measure)

See CONTRIBUTING.md ("A saliency selector") for the contract.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, ClassVar

import torch
from pydantic import Field

from nasfw.acting import decision_figures, decisions_acted
from nasfw.budget import Budget
from nasfw.components import SearchSpace, Selector, StrictModel
from nasfw.data import Batch
from nasfw.genotype import Genotype
from nasfw.presets import Recipe
from nasfw.supernet import Supernet
from nasfw_freedarts import presets
from nasfw_freedarts.guard import NoSignalError, SignalReport, check_signal
from nasfw_freedarts.saliency import Scores, warn_if_zero
from nasfw_freedarts.scratch import in_place


class SaliencyConfig(StrictModel):
    """Options every saliency selector has."""

    seed: int | None = Field(default=None, ge=0, description="seed of the scoring RNG (default: the run's seed)")
    repeats: int = Field(default=1, ge=1, description="score this many times and average the scores")
    reinit: bool = Field(default=True, description="repeats after the first re-initialise the weights "
                                                   "(seeded); otherwise only the batch changes")
    signal_guard: bool = Field(default=True, description="score again in the other precision (float32 <-> "
                                                         "float64) and stop (exit 2) unless the spread of the "
                                                         "scores exceeds that rounding noise min_signal_ratio "
                                                         "times; false accepts a choice decided by rounding")
    min_signal_ratio: float = Field(default=3.0, gt=0, description="spread / noise the guard requires: the scores' "
                                                                  "spread at least this many times their largest "
                                                                  "rounding change")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class SaliencySelector(Selector):
    """Score every (edge, op) by a saliency of its mixing coefficient, check the scores carry a signal, then
    let the space discretize them. Subclasses set :attr:`measure` and implement :meth:`score_once`."""

    #: the name of the score, in messages and in ``summary.json``
    measure: ClassVar[str] = ""
    config: Any
    needs_search = False  # saliency at initialisation: no search needed (optimizer none)

    def __init__(self, config: Any = None, ctx: Any = None):
        super().__init__(config, ctx)
        self._batches: dict[tuple[int, int], Batch] = {}

    @classmethod
    def preset(cls, name: str, config: Any) -> Recipe | None:
        """``paper``: the official notebook's settings for the run's space; ``tiny``: a small batch."""
        if name == "paper":
            return presets.paper(cls.measure, config)
        return presets.tiny(cls.measure) if name == "tiny" else None

    @classmethod
    def preset_names(cls, config: Any) -> list[str]:
        return ["paper", "tiny"]

    def acted(self, activity: dict[str, Any]) -> str | None:
        """The signal guard found the scores above rounding noise (or was switched off) and they decided every
        edge (no exact ties)."""
        sel = activity.get("selector", {})
        if sel.get("verdict") == "no-signal":
            return "the saliency scores are not above numerical noise (signal guard)"
        return decisions_acted(sel)

    # -- what a subclass provides ------------------------------------------------------------
    def score_once(self, supernet: Supernet, run: Any, repeat: int, dtype: torch.dtype) -> Scores:
        """One scoring of ``supernet`` in precision ``dtype``: per architecture tensor a (rows, K) float64 CPU
        tensor, higher = keep, -inf where masked (:func:`nasfw_freedarts.saliency.finalize`). It must leave
        the supernet as it was (:func:`nasfw_freedarts.scratch.in_place`) and be a function of the RNG state
        and of :meth:`batch`: the guard calls it twice with the same seeds."""
        raise NotImplementedError

    def no_signal_hint(self, report: SignalReport) -> str:
        """The option that fixes a failed guard, for the one-line error (override with what your score needs)."""
        return ("Score a trained supernet, in float64 (--set selector.dtype=float64) or with more data; "
                "--set selector.signal_guard=false accepts the rounding-decided choice.")

    def plan_details(self) -> dict[str, Any]:
        """Extra ``k=v`` figures for the run's plan (input, BN mode, ...)."""
        return {}

    # -- shared machinery ---------------------------------------------------------------------
    def edge_weighting(self) -> Any:
        """FreeDARTS mixes ops with α itself (no softmax) when the optimizer does not choose."""
        return "raw"

    def score_dtype(self, supernet: Supernet) -> torch.dtype:
        """The working precision: the config's ``dtype`` if it has one, else the supernet's own."""
        name = getattr(self.config, "dtype", None)
        if name is not None:
            return getattr(torch, name)
        return next((p.dtype for p in supernet.parameters() if p.is_floating_point()), torch.float32)

    @staticmethod
    def noise_dtype(dtype: torch.dtype) -> torch.dtype:
        """The precision the guard compares with: float32 for float64 work, float64 otherwise."""
        return torch.float32 if dtype == torch.float64 else torch.float64

    def batch(self, run: Any, batch_size: int, repeat: int = 0) -> Batch:
        """One labelled batch of the architecture-validation split (a checkpointed stream of its own), the same
        for every scoring of one repeat within a selection (so the guard's second pass sees the same data)."""
        key = (repeat, batch_size)
        if key not in self._batches:
            self._batches[key] = run.to_device(run.data.stream(f"freedarts-{self.measure}", "val", batch_size).next())
        return self._batches[key]

    def scores(self, supernet: Supernet, run: Any, dtype: torch.dtype | None = None) -> Scores:
        """The (repeat-averaged) scores in ``dtype`` (default :meth:`score_dtype`), seeded by the config or run."""
        dtype = dtype if dtype is not None else self.score_dtype(supernet)
        seed = self.config.seed if self.config.seed is not None else int(getattr(run.config, "seed", 0))
        devices = [run.device] if getattr(run, "device", torch.device("cpu")).type == "cuda" else []
        total: Scores | None = None
        with torch.random.fork_rng(devices=devices):
            for r in range(self.config.repeats):
                torch.manual_seed(seed + r)
                fresh = r > 0 and self.config.reinit
                with in_place(supernet, reinit=True) if fresh else contextlib.nullcontext() as scratch:
                    s = self.score_once(scratch.net if scratch is not None else supernet, run, r, dtype)
                total = s if total is None else {k: total[k] + s[k] for k in s}
        assert total is not None
        return {k: v / self.config.repeats for k, v in total.items()}

    @staticmethod
    def _available(scores: Scores, table: dict[str, torch.Tensor]) -> Scores:
        return {k: torch.where(table[k] & torch.isfinite(v), v, torch.full_like(v, float("-inf")))
                for k, v in scores.items()}

    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        self._batches = {}
        table = space.op_table()
        dtype = self.score_dtype(supernet)
        final = self._available(self.scores(supernet, run, dtype), table)
        with contextlib.suppress(AttributeError):
            run.extra_summary["saliency"] = {
                "measure": self.measure, "dtype": dtype_name(dtype),
                "scores": {k: [[float(x) if x != float("-inf") else None for x in row] for row in v.tolist()]
                           for k, v in final.items()},
            }
        genotype = space.discretize(final)
        note = getattr(run, "note_activity", None)
        if note is not None:  # margins and exact ties of the decisions (nasfw.acting), guard or not
            note("selector", measure=self.measure, **decision_figures(space, final, genotype))
        if not self.config.signal_guard:
            warn_if_zero(final, self.measure)
            if note is not None:
                note("selector", measure=self.measure, verdict="unchecked", acted=None)
            return genotype
        other_dtype = self.noise_dtype(dtype)
        other = self._available(self.scores(supernet, run, other_dtype), table)
        report = check_signal(self.measure, final, other, table, (dtype_name(dtype), dtype_name(other_dtype)),
                              self.config.min_signal_ratio, (genotype, space.discretize(other)))
        if note is not None:
            note("selector", **report.figures())
        if report.verdict != "signal":
            raise NoSignalError(report.message(self.no_signal_hint(report)))
        if report.differing_edges:
            warnings.warn(f"{self.measure}: {report.differing_edges} genotype edge(s) differ between "
                          f"{report.dtypes[0]} and {report.dtypes[1]} scores (near-ties decided by rounding)",
                          stacklevel=2)
        return genotype

    def plan(self, space: SearchSpace, budget: Budget) -> dict[str, Any]:
        scored = sum(int(t.sum()) for t in space.op_table().values())
        passes = self.config.repeats * (2 if self.config.signal_guard else 1)
        return {"measure": self.measure, "scores": scored, "passes": passes,
                "guard": f"spread/noise>={self.config.min_signal_ratio:g}" if self.config.signal_guard else "off",
                **self.plan_details()}
