"""nasfw's search steps against the reference per-edge sum, measured in one process and one run.

Each case builds two runs with the same seed (same initial weights, α and data) through the engine;
the baseline's supernet is replaced by :func:`baseline.plain_copy` (the DARTS / NB201 reference
formulation ``sum(w * op(x))`` per edge). Both get the same batches; the script checks that their
losses and architecture gradients agree in fp32, then prints ms per step (best of the timed
repeats), memory (CUDA: peak allocated; CPU: bytes autograd saves for backward in one forward) and
the ratio baseline / nasfw.

    python benchmarks/search_step.py                                   # all cases, the issue's sizes
    python benchmarks/search_step.py --cases darts --batch-size 16     # one case, smaller batch
    python benchmarks/search_step.py --device cuda --bf16 --compile    # speed flags (fast path only)

Cases: darts (1st order), darts-2nd, nb201 (1st order; also xautodl's TinyNetworkDarts when the
``xautodl`` package is installed: ``pip install xautodl --no-deps``), zarts-mgs (one α update),
perturb (one DARTS-PT selection pass without tuning), synflow / snip / grasp (one FreeDARTS selection, both
passes of its signal guard). The saliency cases print two rows: against the reference way (per-edge
supernet scored on a ``copy.deepcopy``, as zero-cost-nas and the FreeDARTS GraSP notebook do) and
``<case>-in-place``, nasfw's supernet on a deep copy against nasfw scoring it in place (what #23.4 changes).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import plain_copy

from nasfw.config import build_config
from nasfw.engine import Run, build, prepare

CASES = ("darts", "darts-2nd", "nb201", "zarts-mgs", "perturb", "synflow", "snip", "grasp")
SALIENCY = ("synflow", "snip", "grasp")


def make_run(case: str, a: argparse.Namespace, out: Path, baseline: bool) -> Run:
    """A built run for one case; the baseline's supernet runs the reference formulation."""
    space = "nb201" if case == "nb201" else ("darts-7op" if case in ("perturb", "zarts-mgs") else "darts")
    space_params: dict[str, Any] = {"init_channels": a.channels}
    if space == "nb201":
        space_params["cells_per_stage"] = a.nb201_cells
    else:
        space_params["layers"] = a.layers
    optimizer: dict[str, Any] = {"name": {"darts-2nd": "darts-2nd", "zarts-mgs": "zarts-mgs",
                                          **dict.fromkeys(SALIENCY, "none")}.get(case, "darts"), "params": {}}
    if case == "zarts-mgs":
        optimizer["params"] = {"warmup_epochs": 0, "update_every": 1, "inner_steps": a.zarts_inner_steps,
                               "num_samples": a.zarts_samples, "inner_batch_size": a.batch_size}
    selector: dict[str, Any] = {"name": "magnitude"}
    if case == "perturb":
        selector = {"name": "perturb", "params": {"tune_epochs": 0, "eval_batches": 1}}
    elif case == "synflow":
        selector = {"name": "synflow"}
    elif case in SALIENCY:
        selector = {"name": case, "params": {"batch_size": a.batch_size}}
    config = build_config({
        "space": {"name": space, "params": space_params}, "optimizer": optimizer, "selector": selector,
        "dataset": {"name": "synthetic", "params": {"size": a.size, "n_train": 4 * a.batch_size, "n_test": 0}},
        "search": {"epochs": 1, "batch_size": a.batch_size, "steps_per_epoch": 2, "eval_batches": 1},
        "performance": {"channels_last": a.channels_last and not baseline, "bf16": a.bf16 and not baseline,
                        "compile": a.compile and not baseline, "tf32": a.tf32},
        "log": {"progress": "none", "tensorboard": False, "plots": False},
        "seed": 0, "device": a.device,
    })
    run = prepare(config, out_dir=out, quiet=True)
    build(run)
    if baseline:
        assert run.supernet is not None and run.optimizer is not None and run.data is not None
        run.supernet = plain_copy(run.supernet)
        run.optimizer.setup(run.supernet, run.data, 1, run.optimizer.steps_per_epoch)
        run.optimizer.run = run  # type: ignore[attr-defined]
    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: bool = True) -> float:
    """Best wall-clock ms of ``repeats`` calls (after one warm-up call unless ``warmup`` is False)."""
    if warmup:
        fn()
        sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def saved_bytes(run: Run, batch: Any) -> int:
    """Bytes autograd keeps for backward in one training forward (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.device.type != "meta":
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    assert run.supernet is not None
    x, y = run.to_device(batch)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), run.autocast():
        F.cross_entropy(run.supernet(x).float(), y)
    return sum(seen.values())


def memory_mb(run: Run, work: Callable[[], Any], batch: Any) -> float:
    if run.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(run.device)
        work()
        sync(run.device)
        return torch.cuda.max_memory_allocated(run.device) / 2**20
    return saved_bytes(run, batch) / 2**20


def alpha_grads(net: torch.nn.Module, batch: Any, run: Run, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    x, y = run.to_device(batch)
    alphas = list(net.arch_parameters().values())
    with run.autocast():
        loss = F.cross_entropy(net(x.to(dtype)).float(), y)
    return [g.double().cpu() for g in torch.autograd.grad(loss, alphas, allow_unused=True, materialize_grads=True)]


def kink_spread(net: torch.nn.Module, batch: Any, run: Run, g_ref: list[torch.Tensor], draws: int = 4,
                scale: float = 1e-6) -> float:
    """How far the fp64 dL/dα moves when the input moves by ``scale`` (relative): the size of a jump that fp32
    rounding alone can cause.

    ReLU and max pooling make the loss piecewise smooth; where an activation sits within rounding of a kink
    (a ReLU input of 1e-6, a near tie in a pooling window), its gradient jumps, and which side an fp32
    computation lands on is decided by rounding, not by the formulation (issue 23: the 4.0e-4 at batch 8,
    16×16 was one such jump, equal in size to the fp64 gradient's own jump under a 1e-6 input perturbation).
    """
    x, y = run.to_device(batch)
    gen = torch.Generator().manual_seed(0)
    spread = 0.0
    for _ in range(draws):
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device)
        g = alpha_grads(net, (x.double() + scale * float(x.double().std()) * noise, y), run, torch.float64)
        spread = max(spread, max(float((a - r).abs().max() / (r.abs().max() + 1e-30)) for a, r in zip(g, g_ref)))
    return spread


def grad_errors(fast: Run, batch: Any) -> dict[str, float]:
    """dL/dα of nasfw's fp32 supernet and of the fp32 reference formulation, each against an fp64 evaluation
    of the reference (largest error relative to the largest gradient), and ``ok``: nasfw's error is within
    3× the reference's, or (a kink crossed, see :func:`kink_spread`) within 2× the fp64 gradient's jump."""
    assert fast.supernet is not None
    ref = plain_copy(fast.supernet).double()
    g_ref = alpha_grads(ref, batch, fast, torch.float64)
    # the fp32 baseline in nasfw's memory format: channels-last convolutions round differently on their own
    g_fast, g_plain = alpha_grads(fast.supernet, batch, fast), alpha_grads(plain_copy(fast.supernet), batch, fast)

    def rel(gs: list[torch.Tensor]) -> float:
        return max(float((g - r).abs().max() / (r.abs().max() + 1e-30)) for g, r in zip(gs, g_ref))

    out = {"nasfw": rel(g_fast), "baseline": rel(g_plain), "spread": 0.0}
    out["ok"] = out["nasfw"] <= max(3 * out["baseline"], 1e-5)
    if not out["ok"]:
        out["spread"] = kink_spread(ref, batch, fast, g_ref)
        out["ok"] = out["nasfw"] <= 2 * out["spread"]
    return out


def agree(fast: Run, batch: Any, exact: bool) -> str:
    """dL/dα of both paths against an fp64 reference: nasfw's fp32 error may not exceed 3x the baseline's
    (or, where the loss has a kink within fp32 rounding of this point, 2x the fp64 gradient's jump there).

    Deep supernets with batch-statistics BN amplify fp32 rounding, so a fixed tolerance would be arbitrary;
    the fp64 plain sum is the truth both fp32 paths approximate.
    """
    if not exact:
        return "n/a (bf16)"
    e = grad_errors(fast, batch)
    note = f"; kink: fp64 grad jumps {e['spread']:.1e} under 1e-6 input noise" if e["spread"] else ""
    assert e["ok"], f"dL/dα error vs fp64: nasfw {e['nasfw']:.1e}, baseline {e['baseline']:.1e}{note}"
    return f"{e['nasfw']:.1e} (baseline {e['baseline']:.1e}{note})"


def bench_case(case: str, a: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fast = make_run(case, a, Path(tmp) / "fast", baseline=False)
        plain = make_run(case, a, Path(tmp) / "plain", baseline=True)
        assert fast.data is not None
        batches = [(fast.data.train.next(), fast.data.val.next()) for _ in range(2)]
        xv, yv = batches[0][1]  # the fp32-vs-fp64 check on the first images only (fp64 at batch 64 is ~10 GB)
        check = agree(fast, (xv[: a.check_batch], yv[: a.check_batch]), exact=not a.bf16)

        def work(run: Run, deep_copy: bool = False) -> Callable[[], Any]:
            assert run.optimizer is not None and run.supernet is not None and run.selector is not None
            if case == "perturb" or case in SALIENCY:
                space, net, sel = run.space, run.supernet, run.selector
                state = {k: v.clone() for k, v in net.state_dict().items()}

                def select() -> Any:
                    net.load_state_dict(state)
                    net.set_override({})
                    sel.load_state_dict({})
                    # the reference way: score a deep copy (zero-cost-nas' get_prunable_copy, the GraSP notebook)
                    target = copy.deepcopy(net, {id(net.weighting): net.weighting}) if deep_copy else net
                    return sel.select(target, space, run)
                return select

            def step() -> Any:
                run.supernet.train()
                with run.autocast():
                    return run.optimizer.step(run.to_device(batches[0][0]), run.to_device(batches[0][1]))
            return step

        # interleaved (baseline, nasfw, baseline, ...), best of the repeats: load drift and allocator warm-up
        # hit both alike
        fns = {"nasfw": work(fast), "baseline": work(plain, deep_copy=case in SALIENCY)}
        runs = {"nasfw": fast, "baseline": plain}
        if case in SALIENCY:  # the isolation alone: nasfw's supernet, deep copy vs in place
            fns["copy"], runs["copy"] = work(fast, deep_copy=True), fast
        best = {name: float("inf") for name in fns}
        order = [n for n in ("baseline", "copy", "nasfw") if n in fns]
        for name in order if case != "perturb" else ():  # warm-up (a perturb pass is long)
            fns[name]()
        for _ in range(1 if case == "perturb" else a.repeats):
            for name in order:
                best[name] = min(best[name], timed(fns[name], runs[name].device, 1, warmup=False))
        results = {name: (best[name], memory_mb(runs[name], fns[name], batches[0][0])) for name in fns}
        (f_ms, f_mb), (b_ms, b_mb) = results["nasfw"], results["baseline"]
        rows.append({"case": case, "baseline_ms": round(b_ms, 1), "nasfw_ms": round(f_ms, 1),
                     "speedup": round(b_ms / f_ms, 2), "baseline_mb": round(b_mb, 1), "nasfw_mb": round(f_mb, 1),
                     "memory_ratio": round(f_mb / b_mb, 2) if b_mb else None, "grad_rel_err": check})
        if case in SALIENCY:
            c_ms = results["copy"][0]
            rows.append({"case": f"{case}-in-place", "baseline_ms": round(c_ms, 1), "nasfw_ms": round(f_ms, 1),
                         "speedup": round(c_ms / f_ms, 2), "note": "baseline: nasfw's supernet on a deep copy"})
        if case == "nb201":
            rows.extend(bench_xautodl(a, fast, batches, f_ms, f_mb))
    return rows


def bench_xautodl(a: argparse.Namespace, fast: Run, batches: list, f_ms: float, f_mb: float) -> list[dict[str, Any]]:
    """xautodl's DARTS supernet for NB201, one first-order DARTS step (α on val, w on train)."""
    try:
        from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts
    except ImportError:
        return [{"case": "nb201-vs-xautodl", "note": "xautodl not installed (pip install xautodl --no-deps)"}]
    from nasfw_space_nb201.ops import NB201_OPS

    torch.manual_seed(0)
    net = TinyNetworkDarts(a.channels, a.nb201_cells, 4, 10, list(NB201_OPS), False, False).to(fast.device)
    alphas = [net.arch_parameters]
    weights = [p for p in net.parameters() if p is not net.arch_parameters]
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    (xt, yt), (xv, yv) = fast.to_device(batches[0][0]), fast.to_device(batches[0][1])

    def step() -> None:
        a_opt.zero_grad()
        F.cross_entropy(net(xv)[1], yv).backward(inputs=alphas)
        a_opt.step()
        w_opt.zero_grad()
        F.cross_entropy(net(xt)[1], yt).backward(inputs=weights)
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    ms = timed(step, fast.device, a.repeats)
    if fast.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(fast.device)
        step()
        mb = torch.cuda.max_memory_allocated(fast.device) / 2**20
    else:
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            F.cross_entropy(net(xt)[1], yt)
        mb = sum(seen.values()) / 2**20
    return [{"case": "nb201-vs-xautodl", "baseline_ms": round(ms, 1), "nasfw_ms": round(f_ms, 1),
             "speedup": round(ms / f_ms, 2), "baseline_mb": round(mb, 1), "nasfw_mb": round(f_mb, 1),
             "memory_ratio": round(f_mb / mb, 2) if mb else None, "grad_rel_err": "n/a (other weights)"}]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=8, help="cells of the DARTS supernet")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--size", type=int, default=32, help="input height and width")
    p.add_argument("--nb201-cells", type=int, default=5, help="NB201 cells per stage")
    p.add_argument("--zarts-inner-steps", type=int, default=10)
    p.add_argument("--zarts-samples", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--check-batch", type=int, default=16, help="images of the dL/dα fp32-vs-fp64 check")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile each cell (nasfw only)")
    p.add_argument("--no-tf32", dest="tf32", action="store_false")
    p.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    a = p.parse_args(argv)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        p.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# device: {name}; torch {torch.__version__}; batch {a.batch_size}, DARTS {a.layers} cells, "
          f"C={a.channels}, {a.size}x{a.size}; flags: channels_last={a.channels_last} bf16={a.bf16} "
          f"compile={a.compile} tf32={a.tf32}")
    for case in cases:
        for row in bench_case(case, a):
            if a.json:
                print(json.dumps(row))
            else:
                print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
