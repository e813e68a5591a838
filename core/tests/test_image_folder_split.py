"""The image-folder dataset on a real ImageFolder tree of PNG files: the DARTS split mixes classes."""

from __future__ import annotations

import torch
from PIL import Image

from nasfw.registry import get_registry


def _tree(root, classes: int = 3, per_class: int = 12) -> None:
    for split in ("train", "test"):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(per_class if split == "train" else 2):
                Image.new("RGB", (8, 8), color=(40 * c, 5 * i, 100)).save(d / f"{i}.png")


def test_search_halves_both_hold_every_class_and_do_not_depend_on_the_seed(tmp_path) -> None:
    _tree(tmp_path)
    ds = get_registry().create("dataset", {"name": "image-folder", "params": {"data_dir": str(tmp_path),
                                                                             "augment": False}})
    a, b = ds.splits(0), ds.splits(5)
    labels = {name: torch.tensor([int(y) for _, y in getattr(a, name)]) for name in ("train", "val")}
    assert len(labels["train"]) == len(labels["val"]) == 18
    assert set(labels["train"].tolist()) == set(labels["val"].tolist()) == {0, 1, 2}
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a.train, b.train))  # CIFAR-like fixed order
    assert a.shape.num_classes == 3 and len(a.test) == 6
