"""The ``paper`` and ``tiny`` presets of the DARTS optimizers, the random-search baseline and the magnitude
selector, every value with the file and line of the official code it comes from.

DARTS on its own cell space: quark0/darts @ f276dd3 (``cnn/train_search.py``, ``cnn/architect.py``).
DARTS and random search on NAS-Bench-201: D-X-Y/AutoDL-Projects @ 5d7ccd4 (``exps/NAS-Bench-201-algos``,
``scripts-search/NAS-Bench-201-algos``, ``configs/nas-benchmark/algos``), the NB201 paper's own runs.
Random search with weight sharing on the DARTS space: liamcli/randomNAS_release @ 6513a0a.
"""

from __future__ import annotations

from nasfw.presets import Cited, Recipe

_TS = "quark0/darts@f276dd3 cnn/train_search.py"
_NB = "D-X-Y/AutoDL-Projects@5d7ccd4"
_RS = "liamcli/randomNAS_release@6513a0a"

#: DARTS (Liu et al., ICLR 2019), CIFAR-10 search on the DARTS cell space (paper §3.1.1 / A.1.1).
DARTS_PAPER = Recipe(
    source="DARTS (Liu, Simonyan, Yang, ICLR 2019), A.1.1; official cnn/train_search.py",
    params={
        "w_lr": Cited(0.025, f"{_TS}:24 --learning_rate"),
        "lr_schedule": Cited({"name": "cosine", "params": {"min_lr": 0.001}},
                             f"{_TS}:25 --learning_rate_min, :103 CosineAnnealingLR(epochs, eta_min)"),
        "w_momentum": Cited(0.9, f"{_TS}:26 --momentum"),
        "w_weight_decay": Cited(3e-4, f"{_TS}:27 --weight_decay"),
        "grad_clip": Cited(5.0, f"{_TS}:39 --grad_clip"),
        "arch_lr": Cited(3e-4, f"{_TS}:42 --arch_learning_rate"),
        "arch_weight_decay": Cited(1e-3, f"{_TS}:43 --arch_weight_decay"),
        "arch_betas": Cited([0.5, 0.999], "quark0/darts@f276dd3 cnn/architect.py:18 Adam betas"),
        "fd_r": Cited(0.01, "quark0/darts@f276dd3 cnn/architect.py:76 _hessian_vector_product(r=1e-2)"),
        "warmup_epochs": Cited(0, f"{_TS}: α is updated from the first step (no warm-up)"),
    },
    run={
        "search.epochs": Cited(50, f"{_TS}:30 --epochs"),
        "search.batch_size": Cited(64, f"{_TS}:23 --batch_size (train and val streams)"),
        "seed": Cited(2, f"{_TS}:38 --seed"),
    },
)

#: DARTS-V1/V2 as NAS-Bench-201 ran them (Dong & Yang, ICLR 2020, §5).
DARTS_NB201 = Recipe(
    source="NAS-Bench-201 (Dong & Yang, ICLR 2020) §5: DARTS-V1/V2 runs, official AutoDL-Projects scripts",
    params={
        "w_lr": Cited(0.025, f"{_NB} configs/nas-benchmark/algos/DARTS.config LR"),
        "lr_schedule": Cited({"name": "cosine", "params": {"min_lr": 0.001}},
                             f"{_NB} configs/nas-benchmark/algos/DARTS.config scheduler cos, eta_min"),
        "w_momentum": Cited(0.9, f"{_NB} configs/nas-benchmark/algos/DARTS.config momentum"),
        "w_weight_decay": Cited(5e-4, f"{_NB} configs/nas-benchmark/algos/DARTS.config decay"),
        "grad_clip": Cited(5.0, f"{_NB} exps/NAS-Bench-201-algos/DARTS-V1.py --gradient_clip"),
        "arch_lr": Cited(3e-4, f"{_NB} scripts-search/NAS-Bench-201-algos/DARTS-V1.sh --arch_learning_rate"),
        "arch_weight_decay": Cited(1e-3, f"{_NB} scripts-search/NAS-Bench-201-algos/DARTS-V1.sh "
                                         f"--arch_weight_decay"),
        "arch_betas": Cited([0.5, 0.999], f"{_NB} exps/NAS-Bench-201-algos/DARTS-V1.py Adam betas"),
        "warmup_epochs": Cited(0, f"{_NB} configs/nas-benchmark/algos/DARTS.config warmup 0"),
    },
    run={
        "search.epochs": Cited(50, f"{_NB} configs/nas-benchmark/algos/DARTS.config epochs"),
        "search.batch_size": Cited(64, f"{_NB} configs/nas-benchmark/algos/DARTS.config batch_size"),
    },
    notes="NB201's scheduler steps per iteration and its SGD is Nesterov; nasfw's lr is set per epoch, plain momentum",
)

#: The smallest DARTS settings that still move α: no warm-up.
DARTS_TINY = Recipe(source="nasfw: smallest acting settings (α updated from the first step)",
                    params={"warmup_epochs": Cited(0, "α must move in a 1-epoch run")})

#: Random search with weight sharing on the DARTS space (Li & Talwalkar, UAI 2019, §4.1 and A.4).
RANDOM_PAPER = Recipe(
    source="Random search with weight sharing (Li & Talwalkar, UAI 2019), A.4; official randomNAS_release",
    params={
        "w_lr": Cited(0.025, f"{_RS} benchmarks/cnn/darts/darts_wrapper_discrete.py:32"),
        "lr_schedule": Cited({"name": "cosine", "params": {"min_lr": 0.001}},
                             f"{_RS} benchmarks/cnn/darts/darts_wrapper_discrete.py:34, :113 CosineAnnealingLR"),
        "w_momentum": Cited(0.9, f"{_RS} benchmarks/cnn/darts/darts_wrapper_discrete.py:35"),
        "w_weight_decay": Cited(3e-4, f"{_RS} benchmarks/cnn/darts/darts_wrapper_discrete.py:36"),
        "grad_clip": Cited(0.25, f"{_RS} searchers/random_weight_share.py:173 --grad_clip default"),
        "num_candidates": Cited(1000, f"{_RS} searchers/random_weight_share.py:90 (one set of 1000; A.4)"),
        "eval_batches": Cited(10, f"{_RS} benchmarks/cnn/darts/darts_wrapper_discrete.py:193 n_batches = 10 (A.4)"),
    },
    run={
        "search.epochs": Cited(100, f"{_RS} searchers/random_weight_share.py:171 --epochs default"),
        "search.batch_size": Cited(64, f"{_RS} searchers/random_weight_share.py:172 --batch_size default"),
    },
    notes="the paper then re-ranks the top 10 of each 1000 on the full validation set; nasfw keeps the best of "
          "the cheap ranking",
)

#: Random search with weight sharing as NAS-Bench-201 ran it (RANDOM-NAS).
RANDOM_NB201 = Recipe(
    source="NAS-Bench-201 (Dong & Yang, ICLR 2020) §5: RANDOM-NAS, official AutoDL-Projects scripts",
    params={
        "w_lr": Cited(0.025, f"{_NB} configs/nas-benchmark/algos/RANDOM.config LR"),
        "lr_schedule": Cited({"name": "cosine", "params": {"min_lr": 0.001}},
                             f"{_NB} configs/nas-benchmark/algos/RANDOM.config scheduler cos, eta_min"),
        "w_momentum": Cited(0.9, f"{_NB} configs/nas-benchmark/algos/RANDOM.config momentum"),
        "w_weight_decay": Cited(5e-4, f"{_NB} configs/nas-benchmark/algos/RANDOM.config decay"),
        "num_candidates": Cited(100, f"{_NB} scripts-search/NAS-Bench-201-algos/RANDOM-NAS.sh --select_num 100"),
        "eval_batches": Cited(1, f"{_NB} exps/NAS-Bench-201-algos/RANDOM-NAS.py search_find_best: one batch each"),
    },
    run={
        "search.epochs": Cited(250, f"{_NB} configs/nas-benchmark/algos/RANDOM.config epochs"),
        "search.batch_size": Cited(64, f"{_NB} configs/nas-benchmark/algos/RANDOM.config batch_size"),
    },
)

RANDOM_TINY = Recipe(source="nasfw: smallest acting settings",
                     params={"num_candidates": Cited(3, "a few candidates are enough to write the best into α"),
                             "eval_batches": Cited(1, "one batch per candidate")})


def on_nb201(config: object) -> bool:
    space = getattr(config, "space", None)
    return getattr(space, "name", "") == "nb201"
