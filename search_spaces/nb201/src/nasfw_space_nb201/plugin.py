"""Entry point of nasfw-space-nb201: the ``nb201`` space and benchmark."""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw_space_nb201.benchmark import NB201Benchmark
from nasfw_space_nb201.space import NB201Space


@hookimpl
def nasfw_register_search_spaces(register: Any) -> None:
    register("nb201", NB201Space, description="NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops, 15,625 cells")


@hookimpl
def nasfw_register_benchmarks(register: Any) -> None:
    register("nb201", NB201Benchmark,
             description="true NB201 test accuracies (cifar10, cifar100, imagenet16-120) from a CSV or the .pth")
