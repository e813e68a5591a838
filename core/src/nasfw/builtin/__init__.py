"""Generic components that ship with the core: datasets, softmax weighting, standard LR schedules.

They are registered through the same hooks as any plugin; no paper's method lives here.
"""

from __future__ import annotations

from typing import Any

from nasfw import hookimpl
from nasfw.builtin import datasets, datasets_imagenet, optimizers, schedules, weightings


@hookimpl
def nasfw_register_datasets(register: Any) -> None:
    register("digits", datasets.Digits, description="scikit-learn's 8x8 handwritten digits (offline, embedded)")
    register("cifar10", datasets.CIFAR10, description="CIFAR-10 through torchvision")
    register("cifar100", datasets.CIFAR100, description="CIFAR-100 through torchvision")
    register("svhn", datasets.SVHN, description="SVHN through torchvision")
    register("image-folder", datasets.ImageFolderData,
             description="ImageFolder layout: DIR/train/<class>/*, DIR/test/<class>/*")
    register("imagenet16-120", datasets_imagenet.ImageNet16, description="NB201's 16x16 ImageNet, classes 1-120")
    register("imagenet", datasets_imagenet.ImageNet, description="ImageNet tree (train/, val/) with DARTS transforms")
    register("synthetic", datasets.Synthetic, description="seeded random images of any shape (benchmarks, smoke tests)")


@hookimpl
def nasfw_register_edge_weightings(register: Any) -> None:
    register("softmax", weightings.Softmax, description="per-edge softmax over the available ops (DARTS)")


@hookimpl
def nasfw_register_lr_schedules(register: Any) -> None:
    register("cosine", schedules.Cosine, description="cosine annealing per epoch down to min_lr")
    register("constant", schedules.Constant, description="constant learning rate")
    register("exponential", schedules.Exponential, description="lr * gamma^epoch (DARTS ImageNet: 0.97)")
    register("linear", schedules.Linear, description="linear decay to min_lr")


@hookimpl
def nasfw_register_optimizers(register: Any) -> None:
    register("none", optimizers.NoTraining, description="training-free: no search epochs (FreeDARTS-style selection)")


@hookimpl
def nasfw_register_protocols(register: Any) -> None:
    from nasfw.protocols import BUILTIN

    for name, protocol in BUILTIN.items():
        register(name, protocol, description=protocol.description)
