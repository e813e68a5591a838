"""Perturbation-based architecture selection (DARTS-PT, Wang et al., ICLR 2021).

An op's strength is how much the trained supernet's validation accuracy drops when that op alone is
switched off on its edge (its mixing weight zeroed, the others not renormalised). Edges are decided one
at a time in random order (per round: every cell type, in the space's order — DARTS: normal, then
reduce); a decided edge carries a one-hot weight. With a topology rule (DARTS: each node keeps 2
inputs) the nodes are then decided one at a time: the input edge whose removal leaves the highest
accuracy is dropped until ``keep`` remain. Between rounds the supernet is fine-tuned with the run's own
optimizer (α trained, or frozen for the fixed-α variant) at a constant learning rate, on the selection's
own clock (:meth:`Optimizer.tune_epoch_start`: the search's schedules stay where the search ended). The
tuning between rounds is a :data:`~nasfw.budget.Span`: by default 0.1 of the search's weight steps (the
paper: 5 epochs after a 50-epoch search), so a short search gets proportionally short tuning.

Ops whose output is exactly zero (``none``) are not candidates by default: DARTS-PT's own DARTS space has
7 ops without ``none``, removing ``none`` leaves the supernet unchanged (its score is the unperturbed
one, so it can only win ties), and the genotype parser would skip it anyway. Exact accuracy ties (common
with few evaluation batches) are broken by the loss, then by the lower op index.

The variants of one decision (every op removal of the edge, or every edge removal of the node) are scored
together by default: each evaluation batch runs one ``torch.func.vmap``-ed forward over the stacked mixing
weights, so every variant normalises with its own batch statistics, exactly as one evaluation after another
(``batched_variants=false``) does.

Only core interfaces are used: the supernet's mask buffers (decisions), ``override_weights`` (the
perturbed evaluations, which never rebuild modules), the space's ``topology()``/``discretize()`` and the
run's data, ``evaluate`` and ``checkpoint``. Decisions, tuning progress, the RNG and the cost so far are
in :meth:`state_dict`, so a killed selection resumes at the last decision or tuning epoch.

Under torchrun all ranks select together: ``run.evaluate`` sums each evaluation over the ranks' batches
(so every rank sees the same scores), the fine-tuning steps are the optimizer's distributed steps, and each
decision is still taken from rank 0 (broadcast), so the masks can never drift apart.
"""

from __future__ import annotations

import random
import time
from contextlib import nullcontext
from typing import Any, Literal

import torch
from pydantic import Field

from nasfw.budget import Budget, Span, refuse, resolve
from nasfw.components import EdgeWeighting, Optimizer, SearchSpace, Selector, StrictModel
from nasfw.distributed import of as dist_of
from nasfw.engine import batch_statistics_only
from nasfw.errors import ConfigError
from nasfw.genotype import Genotype
from nasfw.presets import Recipe
from nasfw.runlog import progress_of
from nasfw.supernet import Supernet
from nasfw_darts_pt import presets

Criterion = Literal["acc", "loss"]


class PerturbConfig(StrictModel):
    criterion: Criterion = Field(default="acc", description="op choice: lowest accuracy ('acc') or highest loss "
                                                            "('loss') after removing the op")
    topology: Literal["auto", "on", "off"] = Field(
        default="auto", description="decide node inputs by perturbation (auto: when the space has a topology rule)")
    topology_criterion: Criterion | None = Field(default=None, description="criterion of topology (default: criterion)")
    edge_order: Literal["random", "sequential"] = Field(
        default="random", description="order of undecided edges and nodes (published: random)")
    tune_epochs: Span = Field(default=0.1, description="fine-tuning between decision rounds: a count of epochs "
                                                       "(tune_steps each) or a fraction of the search's weight steps "
                                                       "(paper: proj_intv 5 of 50 epochs = 0.1)")
    tune_epochs_before_last: Span | None = Field(
        default=None, description="tuning before the last round (default tune_epochs; the official NB201 script "
                                  "effectively uses 4 epochs)")
    tune_epochs_after_last: Span = Field(default=0, description="tuning after the last decision (does not change "
                                                                "the genotype; the official code runs 1 epoch)")
    tune_steps: int | None = Field(default=None, ge=1, description="steps per tuning epoch (default: the search's)")
    tune_lr: float | None = Field(default=0.0025, gt=0, description="constant weight lr while tuning (published: "
                                                                    "0.025/10); null keeps the optimizer's lr")
    update_alpha: bool | None = Field(default=None, description="keep training α while tuning (default: yes when "
                                                                "there is tuning; false: the fixed-α variant)")
    zero_ops: bool = Field(default=False, description="also score ops whose output is exactly zero ('none'); "
                                                      "DARTS-PT's space has none of them")
    eval_split: Literal["val", "train"] = Field(default="val", description="split the perturbed supernet is scored on")
    eval_batches: int | None = Field(default=2, ge=1, description="batches per evaluation (null: the whole split, "
                                                                "as the paper, --preset paper)")
    bn_mode: Literal["train", "eval"] = Field(default="train", description="BN statistics during evaluations "
                                                                           "(published: train, i.e. batch stats)")
    cache_eval_batches: bool = Field(default=True, description="keep the evaluation batches on the device")
    batched_variants: bool = Field(
        default=True, description="evaluate all variants of a decision (every op removal of an edge, every edge "
                                  "removal of a node) as one vmap-ed forward per batch (same decisions and "
                                  "scores; false: one evaluation after another, less memory)")
    seed: int | None = Field(default=None, description="seed of the edge order (default: the run's seed)")


class _OneHotDecided(EdgeWeighting):
    """Wraps the supernet's weighting so a row with a single candidate left has weight exactly 1.

    DARTS-PT gives decided edges a one-hot weight while α keeps training on the others; masking all but
    the chosen op gives that for softmax, and this makes it hold for any weighting (raw α, Max-W).
    """

    def __init__(self, inner: Any):
        super().__init__()
        self.inner = inner
        self.name = getattr(inner, "name", "")

    def __call__(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.inner(alpha, mask)
        single = mask.sum(dim=-1, keepdim=True) == 1
        return torch.where(single, mask.to(w.dtype), w)

    def strength(self, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.inner.strength(alpha, mask)


class PerturbSelector(Selector):
    """DARTS-PT: keep the op (and inputs) whose removal hurts the supernet most, fine-tuning in between."""

    Config = PerturbConfig
    config: PerturbConfig
    distributed = True

    def __init__(self, config: Any = None, ctx: Any = None):
        super().__init__(config, ctx)
        self.state: dict[str, Any] = {}

    @classmethod
    def preset(cls, name: str, config: Any) -> Recipe | None:
        """``paper``: the official projection protocol for the run's space (DARTS or NAS-Bench-201);
        ``tiny``: one tuning step per round and one evaluation batch."""
        if name == "paper":
            return presets.paper(config)
        return presets.TINY if name == "tiny" else None

    @classmethod
    def preset_names(cls, config: Any) -> list[str]:
        return ["paper", "tiny"]

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = dict(state) if state else {}

    # -- plan ----------------------------------------------------------------------------
    def _init_state(self, supernet: Supernet, space: SearchSpace) -> None:
        c = self.config
        masks = {k: v.detach().cpu() for k, v in supernet.masks().items()}
        cells = [k for k in space.decisions() if k in masks]
        op_pending = {k: [r for r in range(masks[k].shape[0]) if int(masks[k][r].sum()) > 1] for k in cells}
        rules = space.topology()
        use_topology = c.topology == "on" or (c.topology == "auto" and bool(rules))
        if c.topology == "on" and not rules:
            raise ConfigError(f"space '{space.name}' has no topology rule; set selector.topology=auto or off")
        node_pending: dict[str, list[int]] = {k: [] for k in cells}
        if use_topology:
            for k in cells:
                for i, rule in enumerate(rules.get(k, [])):
                    live = [r for r in rule.edges if bool(masks[k][r].any())]
                    if len(live) > rule.keep:
                        node_pending[k].append(i)
        n_op = max((len(v) for v in op_pending.values()), default=0)
        n_node = max((len(v) for v in node_pending.values()), default=0)
        seed = c.seed if c.seed is not None else (self.ctx.seed if self.ctx is not None else 0)
        rng = random.Random(seed * 1_000_003 + 17)
        budget = getattr(self, "_budget", None) or Budget(0, 0)
        self.state = {
            "budget": [budget.epochs, budget.steps_per_epoch], "cells": cells, "op_pending": op_pending,
            "node_pending": node_pending,
            "rounds": ["op"] * n_op + ["node"] * n_node, "round": 0, "stage": "decide", "tune_done": 0,
            "tuning_configured": False, "tune_epoch_total": 0, "decisions": [],
            "cost": {"seconds": 0.0, "eval_seconds": 0.0, "tune_seconds": 0.0, "evaluations": 0,
                     "forward_batches": 0, "forward_images": 0, "tune_steps": 0},
        }
        self._save_rng(rng)

    def _save_rng(self, rng: random.Random) -> None:
        version, internal, gauss = rng.getstate()
        self.state["rng"] = {"version": version, "internal": list(internal), "gauss": gauss}

    def _load_rng(self) -> random.Random:
        s = self.state["rng"]
        rng = random.Random()
        rng.setstate((s["version"], tuple(s["internal"]), s["gauss"]))
        return rng

    def _span_after(self, round_index: int, rounds: int) -> int | float:
        c = self.config
        if round_index == rounds - 1:
            return c.tune_epochs_after_last
        if round_index == rounds - 2 and c.tune_epochs_before_last is not None:
            return c.tune_epochs_before_last
        return c.tune_epochs

    def tune_steps_after(self, round_index: int, rounds: int, budget: Budget) -> int:
        """Weight steps of fine-tuning after decision round ``round_index``: a count of epochs × the tuning
        epoch's steps, or a fraction of the search's steps (at least one step when the fraction is non-zero)."""
        span = self._span_after(round_index, rounds)
        if isinstance(span, float):
            return resolve(span, budget.steps, minimum=1)
        return int(span) * (self.config.tune_steps or budget.steps_per_epoch)

    def _tune_steps_after(self, round_index: int) -> int:
        return self.tune_steps_after(round_index, len(self.state["rounds"]), self.state_budget())

    def state_budget(self) -> Budget:
        b = self.state.get("budget") or [0, 0]
        return Budget(int(b[0]), int(b[1]))

    def _needs_tuning(self) -> bool:
        return any(self._tune_steps_after(i) > 0 for i in range(len(self.state["rounds"])))

    def _alpha_while_tuning(self, tuning_steps: int) -> bool:
        return self.config.update_alpha if self.config.update_alpha is not None else tuning_steps > 0

    # -- plan (before any work) ----------------------------------------------------------
    def _counts(self, space: SearchSpace) -> dict[str, Any]:
        """Decisions and evaluations of a full selection on ``space`` (nothing decided yet)."""
        table = space.op_table()
        zero = self._zero_table(space)
        cells = list(space.decisions())
        rules = space.topology() if self._use_topology(space) else {}
        op_rows = {k: [r for r in range(table[k].shape[0]) if int(table[k][r].sum()) > 1] for k in cells}
        evals = sum(int((table[k][r] & ~zero[k][r]).sum()) for k in cells for r in op_rows[k])
        node_rules = {k: [rule for rule in rules.get(k, []) if len(rule.edges) > rule.keep] for k in cells}
        evals += sum(sum(range(rule.keep + 1, len(rule.edges) + 1)) for k in cells for rule in node_rules[k])
        n_op = max((len(v) for v in op_rows.values()), default=0)
        n_node = max((len(v) for v in node_rules.values()), default=0)
        return {"op_decisions": sum(len(v) for v in op_rows.values()),
                "node_decisions": sum(len(v) for v in node_rules.values()),
                "rounds": n_op + n_node, "evaluations": evals}

    def _use_topology(self, space: SearchSpace) -> bool:
        c = self.config
        return c.topology == "on" or (c.topology == "auto" and bool(space.topology()))

    def _zero_table(self, space: SearchSpace) -> dict[str, torch.Tensor]:
        """True where the op is exactly zero ('none') and so not a candidate (unless ``zero_ops``)."""
        out = {}
        for k, edges in space.decisions().items():
            t = torch.zeros(space.op_table()[k].shape, dtype=torch.bool)
            if not self.config.zero_ops:
                for r, e in enumerate(edges):
                    for j, op in enumerate(e.ops):
                        t[r, j] = op == "none"
            out[k] = t
        return out

    def plan(self, space: SearchSpace, budget: Budget) -> dict[str, Any]:
        c = self.config
        counts = self._counts(space)
        rounds = counts["rounds"]
        tuning = [self.tune_steps_after(i, rounds, budget) for i in range(rounds)]
        total = sum(tuning)
        if c.update_alpha and total == 0 and rounds > 1:
            raise refuse("selector.update_alpha", "α is to be trained while fine-tuning, but the tuning between "
                                                  "decisions is 0 steps", "give selector.tune_epochs > 0 (a count "
                                                  "or a fraction of the search) or set selector.update_alpha=false")
        if c.topology == "on" and not space.topology():
            raise ConfigError(f"space '{space.name}' has no topology rule; set selector.topology=auto or off")
        return {**counts, "decisions": counts["op_decisions"] + counts["node_decisions"],
                "tuning_steps": total, "tuning_steps_per_round": tuning[0] if tuning else 0,
                "alpha_while_tuning": self._alpha_while_tuning(total),
                "none_scored": c.zero_ops}

    def acted(self, activity: dict[str, Any]) -> str | None:
        sel = activity.get("selector", {})
        planned = activity.get("plan", {}).get("selector", {}).get("decisions", sel.get("decisions_planned"))
        made = sel.get("decisions")
        if not made:
            return "no perturbation decision was made"
        if planned is not None and made < planned:
            return f"only {made} of {planned} perturbation decisions were made"
        if sel.get("score_spread") == 0:
            return "every perturbation score is the same (decided by op order)"
        return None

    # -- the selection -------------------------------------------------------------------
    def select(self, supernet: Supernet, space: SearchSpace, run: Any) -> Genotype:
        c = self.config
        if not self.state:
            self._budget = getattr(run, "budget", None) or Budget(run.config.search.epochs,
                                                                   run.optimizer.steps_per_epoch)
            self._init_state(supernet, space)
        st = self.state
        self._zero = self._zero_table(space)
        t_start = time.perf_counter() - st["cost"]["seconds"]
        optimizer: Optimizer = run.optimizer
        if self._needs_tuning() and not st["tuning_configured"]:
            try:
                total = sum(self._tune_steps_after(i) for i in range(len(st["rounds"])))
                optimizer.configure_tuning(c.tune_lr, self._alpha_while_tuning(total))
            except NotImplementedError:
                raise ConfigError(
                    f"selector 'perturb' fine-tunes between decisions but optimizer '{optimizer.name}' cannot "
                    f"(no configure_tuning); set --set selector.tune_epochs=0 or use e.g. --optimizer darts") from None
            st["tuning_configured"] = True
        inner = supernet.weighting
        pin = not isinstance(inner, torch.nn.Module)  # a Module weighting is a registered child; leave it be
        if pin:
            supernet.weighting = _OneHotDecided(inner)
        planned = sum(len(v) for v in st["op_pending"].values()) + sum(len(v) for v in st["node_pending"].values())
        phase = progress_of(run).phase("DARTS-PT decisions", total=planned + len(st["decisions"]))
        phase.__enter__()
        for _ in st["decisions"]:  # resumed: the decisions already made
            progress_of(run).advance()
        try:
            batches: Any = list(run.eval_batches(c.eval_split, c.eval_batches)) if c.cache_eval_batches else None
            rng = self._load_rng()
            rules = space.topology()
            while st["round"] < len(st["rounds"]):
                kind = st["rounds"][st["round"]]
                if st["stage"] == "decide":
                    for cell in st["cells"]:
                        pending = st["op_pending" if kind == "op" else "node_pending"][cell]
                        if not pending:
                            continue
                        pick = rng.choice(sorted(pending)) if c.edge_order == "random" else min(pending)
                        pending.remove(pick)
                        if kind == "op":
                            self._decide_op(supernet, run, cell, pick, batches)
                        else:
                            self._decide_node(supernet, run, cell, rules[cell][pick], batches)
                    self._save_rng(rng)
                    st["stage"], st["tune_done"] = "tune", 0
                    self._checkpoint(run, t_start)
                todo = self._tune_steps_after(st["round"])
                chunk = max(c.tune_steps or self.state_budget().steps_per_epoch or todo, 1)
                while st["tune_done"] < todo:  # in tuning epochs of `chunk` steps, checkpointed after each
                    steps = min(chunk, todo - st["tune_done"])
                    self._tune_epoch(supernet, run, steps)
                    st["tune_done"] += steps
                    self._checkpoint(run, t_start)
                st["round"] += 1
                st["stage"], st["tune_done"] = "decide", 0
            genotype = space.discretize(self._final_scores(supernet, space))
        finally:
            phase.__exit__(None, None, None)
            if pin:
                supernet.weighting = inner
        st["cost"]["seconds"] = time.perf_counter() - t_start
        run.extra_summary["selection"] = {"selector": "perturb", **{k: (round(v, 3) if isinstance(v, float) else v)
                                                                    for k, v in st["cost"].items()},
                                          "decisions": len(st["decisions"])}
        if hasattr(run, "note_activity"):
            run.note_activity("selector", **self._activity(space))
        return genotype

    def _activity(self, space: SearchSpace) -> dict[str, Any]:
        """Decisions made with their scores (op name → score), the smallest winning margin, exact ties."""
        crit = self.config.criterion
        rows = space.decisions()
        out, margins, ties, spread = [], [], 0, []
        for d in self.state["decisions"]:
            if d["kind"] == "op":
                names = rows[d["cell"]][d["row"]].ops
                scores = dict(zip((names[c] for c in d["candidates"]), d[crit]))
                chosen = scores[names[d["chosen"]]]
                others = [v for k, v in scores.items() if k != names[d["chosen"]]]
                if others:
                    margin = (min(others) - chosen) if crit == "acc" else (chosen - max(others))
                    margins.append(margin)
                    ties += int(margin == 0)
                spread += list(scores.values())
                out.append({"cell": d["cell"], "row": d["row"], "op": names[d["chosen"]],
                            crit: {k: round(v, 5) for k, v in scores.items()}})
            else:
                out.append({"cell": d["cell"], "node": d["node"], "kept": d["kept"], "removed": d["removed"]})
        cost = self.state["cost"]
        return {"decisions": len(self.state["decisions"]),
                "op_decisions": sum(d["kind"] == "op" for d in self.state["decisions"]),
                "node_decisions": sum(d["kind"] == "node" for d in self.state["decisions"]),
                "evaluations": cost["evaluations"], "tuning_steps": cost["tune_steps"],
                "ties": ties, "min_margin": min(margins) if margins else None,
                "score_spread": (max(spread) - min(spread)) if spread else None, "made": out}

    def _checkpoint(self, run: Any, t_start: float) -> None:
        self.state["cost"]["seconds"] = time.perf_counter() - t_start
        run.timings["selection_seconds"] = self.state["cost"]["seconds"]
        run.checkpoint()

    # -- decisions -----------------------------------------------------------------------
    def _evaluate(self, supernet: Supernet, run: Any, cell: str, weights: torch.Tensor, batches: Any) -> dict:
        c = self.config
        t0 = time.perf_counter()
        data = batches if batches is not None else run.eval_batches(c.eval_split, c.eval_batches)
        with supernet.override_weights({cell: weights}):
            res = run.evaluate(data, train_mode=c.bn_mode == "train")
        self._count(run, t0, 1, int(res["n"]), batches)
        return res

    def _count(self, run: Any, t0: float, evaluations: int, images: int, batches: Any) -> None:
        """Add ``evaluations`` evaluations of ``images`` images each, begun at ``t0``, to the selection's cost."""
        cost = self.state["cost"]
        cost["eval_seconds"] += time.perf_counter() - t0
        cost["evaluations"] += evaluations
        cost["forward_images"] += evaluations * images
        per = len(batches) if batches is not None else -(-images // run.data.val.batch_size)
        cost["forward_batches"] += evaluations * per

    def _evaluate_many(self, supernet: Supernet, run: Any, cell: str, weights: list[torch.Tensor],
                       batches: Any) -> list[dict]:
        """Scores of several mixing-weight tables of ``cell``: one after another, or (``batched_variants``) all at
        once, each batch's forward ``vmap``-ed over the variants. A variant's BN normalises with its own batch
        statistics in both; the batched pass writes no running statistics (the sequential one moves them once
        per evaluation, which no train-mode score reads)."""
        if len(weights) < 2 or not self.config.batched_variants or getattr(self, "_unbatchable", False):
            return [self._evaluate(supernet, run, cell, w, batches) for w in weights]
        try:
            out = self._evaluate_batched(supernet, run, cell, weights, batches)
            self._batched_ok = True
            return out
        except RuntimeError as exc:  # a supernet whose forward cannot be vmap-ed (e.g. reads weights on the host)
            if getattr(self, "_batched_ok", False):
                raise  # it ran batched before: a real error
            self._unbatchable = True
            run.log({"kind": "note", "text": f"perturb: batched_variants off, the supernet cannot be vmap-ed "
                                             f"({str(exc).splitlines()[0]})"})
            return [self._evaluate(supernet, run, cell, w, batches) for w in weights]

    def _evaluate_batched(self, supernet: Supernet, run: Any, cell: str, weights: list[torch.Tensor],
                          batches: Any) -> list[dict]:
        c = self.config
        t0 = time.perf_counter()
        data = batches if batches is not None else run.eval_batches(c.eval_split, c.eval_batches)
        stacked = torch.stack(weights)
        v = len(weights)
        correct = torch.zeros(v, device=stacked.device)
        loss = torch.zeros(v, device=stacked.device)
        n = 0
        train = c.bn_mode == "train"
        was = supernet.training
        supernet.train(train)

        def forward(x: torch.Tensor) -> Any:
            def one(w: torch.Tensor) -> torch.Tensor:
                with supernet.override_weights({cell: w}):
                    return supernet(x)
            return torch.func.vmap(one)(stacked)

        bn = batch_statistics_only(supernet) if train else nullcontext()
        try:
            with torch.no_grad(), run.autocast(), run.dist.local_bn(), bn:
                for x, y in data:
                    logits = forward(x)
                    for i in range(v):  # the sequential evaluation's reductions, variant by variant
                        loss[i] += torch.nn.functional.cross_entropy(logits[i].float(), y, reduction="sum")
                        correct[i] += (logits[i].argmax(1) == y).sum()
                    n += y.numel()
        finally:
            supernet.train(was)
        if run.dist.enabled:
            tot = run.dist.sum_(torch.cat([correct.double(), loss.double(),
                                           torch.tensor([float(n)], dtype=torch.float64, device=correct.device)]))
            correct, loss, n = tot[:v], tot[v:2 * v], int(tot[-1])
        self._count(run, t0, v, n, batches)
        if n == 0:
            return [{"acc": float("nan"), "loss": float("nan"), "n": 0} for _ in weights]
        return [{"acc": float(correct[i]) / n, "loss": float(loss[i]) / n, "n": n} for i in range(v)]

    def _base_weights(self, supernet: Supernet, cell: str) -> torch.Tensor:
        with torch.no_grad():
            return supernet.mixing_weights()[cell].detach().clone()

    def _decide_op(self, supernet: Supernet, run: Any, cell: str, row: int, batches: Any) -> None:
        """Score each available op of the row by the supernet with that op alone zeroed; keep the worst-off."""
        crit = self.config.criterion
        base = self._base_weights(supernet, cell)
        mask = supernet.mask(cell).detach().cpu().clone()
        zero = self._zero[cell][row]
        cols = [c for c in mask[row].nonzero().flatten().tolist() if not bool(zero[c])] \
            or mask[row].nonzero().flatten().tolist()
        variants = []
        for col in cols:
            w = base.clone()
            w[row, col] = 0.0
            variants.append(w)
        results = self._evaluate_many(supernet, run, cell, variants, batches)
        scores = [float(res[crit]) for res in results]
        losses = [float(res["loss"]) for res in results]
        # acc: lowest accuracy wins (exact ties: highest loss), loss: highest loss wins; then the lower op index
        best = 0
        for i in range(1, len(scores)):
            if crit == "acc":
                better = scores[i] < scores[best] or (scores[i] == scores[best] and losses[i] > losses[best])
            else:
                better = scores[i] > scores[best]
            if better:
                best = i
        chosen = dist_of(run).broadcast_object(cols[best])
        mask[row] = False
        mask[row, chosen] = True
        supernet.set_mask(cell, mask)
        self._record(run, {"kind": "op", "cell": cell, "row": row, "chosen": chosen, "candidates": cols,
                           crit: scores})

    def _decide_node(self, supernet: Supernet, run: Any, cell: str, rule: Any, batches: Any) -> None:
        """Drop the input edge whose removal leaves the best supernet, until ``rule.keep`` remain."""
        crit = self.config.topology_criterion or self.config.criterion
        mask = supernet.mask(cell).detach().cpu().clone()
        edges = [r for r in rule.edges if bool(mask[r].any())]
        removed, history = [], []
        while len(edges) > rule.keep:
            base = self._base_weights(supernet, cell)  # as the reference: earlier removals stay active here
            worst, worst_score = None, 0.0
            variants = []
            for r in edges:
                w = base.clone()
                w[r] = 0.0
                variants.append(w)
            scores = [float(res[crit]) for res in self._evaluate_many(supernet, run, cell, variants, batches)]
            for r, s in zip(edges, scores):
                # acc: highest accuracy after removal = least important; loss: lowest loss. Ties: later edge.
                if worst is None or ((s >= worst_score) if crit == "acc" else (s <= worst_score)):
                    worst, worst_score = r, s
            history.append({"edges": list(edges), crit: scores})
            worst = dist_of(run).broadcast_object(worst)
            edges.remove(worst)
            removed.append(worst)
        for r in removed:
            mask[r] = False
        supernet.set_mask(cell, mask)
        self._record(run, {"kind": "node", "cell": cell, "node": rule.node, "kept": edges, "removed": removed,
                           "rounds": history})

    def _record(self, run: Any, decision: dict[str, Any]) -> None:
        decision = {"round": self.state["round"], **decision}
        self.state["decisions"].append(decision)
        what = f"op {decision['chosen']}" if decision["kind"] == "op" else f"kept {decision['kept']}"
        progress_of(run).advance(f"{decision['cell']} {decision['kind']}: {what}")
        run.log({"kind": "pt_decision", **{("decision" if k == "kind" else k): v for k, v in decision.items()
                                           if k != "rounds"}})

    # -- tuning --------------------------------------------------------------------------
    def _tune_epoch(self, supernet: Supernet, run: Any, steps: int) -> None:
        """One tuning epoch (``steps`` weight steps) of the run's optimizer on the partly decided supernet, on
        the selection's own clock (``tune_epoch_start``; not search epoch E + k)."""
        t0 = time.perf_counter()
        opt: Optimizer = run.optimizer
        epoch = self.state["tune_epoch_total"]
        opt.tune_epoch_start(epoch)
        sums: dict[str, float] = {}
        for _ in range(steps):
            batch, val = run.data.train.next(), run.data.val.next()
            supernet.train()
            metrics = opt.step(run.to_device(batch), run.to_device(val))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        extra = opt.epoch_end(epoch) or {}
        record = {f"tune_{k}": v / max(steps, 1) for k, v in sums.items()}
        record.update({k: float(v) for k, v in extra.items()})
        run.check_finite(record, f"DARTS-PT tuning epoch {self.state['tune_epoch_total'] + 1}")
        self.state["tune_epoch_total"] += 1
        self.state["cost"]["tune_steps"] += steps
        self.state["cost"]["tune_seconds"] += time.perf_counter() - t0
        run.log({"kind": "pt_tune", "round": self.state["round"], "tune_epoch": self.state["tune_epoch_total"],
                 **record})

    # -- result --------------------------------------------------------------------------
    def _final_scores(self, supernet: Supernet, space: SearchSpace) -> dict[str, torch.Tensor]:
        """1 for the kept op of each kept edge, 0 for its other ops, -inf for dropped edges.

        A kept edge whose choice was ``none`` then yields the space's fallback (DARTS: the first non-``none``
        op, as the reference parser's argmax over zero weights) and still ranks above dropped edges.
        """
        table = space.op_table()
        out = {}
        for cell, mask in supernet.masks().items():
            m = mask.detach().cpu()
            t = table.get(cell, m)
            s = torch.full(m.shape, float("-inf"))
            kept = m.any(dim=1)
            s[kept] = torch.where(t[kept], 0.0, float("-inf"))
            s[m] = 1.0
            out[cell] = s
        return out
