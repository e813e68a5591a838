"""imagenet16-120 and imagenet datasets, on small files written here in the real formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nasfw.builtin.datasets_imagenet import IMAGENET16_MEAN, IMAGENET16_STD, ImageNet, ImageNet16
from nasfw.errors import DataError
from nasfw.registry import Registry
from nasfw.testing import check_dataset


def write_imagenet16(root: Path, per_batch: int = 30, batches: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Down-sampled ImageNet 16x16 pickles: dicts of N x 768 uint8 'data' and 1-based 'labels' (1..1000)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"train_data_batch_{i}" for i in range(1, batches + 1)] + ["val_data"]:
        data = rng.integers(0, 256, size=(per_batch, 768), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(1, 241, size=per_batch)]  # half of them beyond class 120
        labels[0], labels[1] = 1, 120
        entry = {"data": data, "labels": labels}
        if name != "val_data":
            entry["mean"] = data.mean(axis=0)
        with (root / name).open("wb") as fh:
            pickle.dump(entry, fh)
        written[name] = (data, np.array(labels))
    return written


def test_imagenet16_reads_the_pickles_keeps_120_classes_and_normalises(tmp_path):
    written = write_imagenet16(tmp_path / "ImageNet16")
    ds = ImageNet16(ImageNet16.Config(data_dir=str(tmp_path), augment=False, train_portion=0.5))
    splits = ds.splits(0)
    assert splits.shape.num_classes == 120 and (splits.shape.height, splits.shape.width) == (16, 16)
    tr = [written[f"train_data_batch_{i}"] for i in (1, 2)]
    keep = np.concatenate([lab for _, lab in tr]) <= 120
    data = np.concatenate([d for d, _ in tr])[keep]
    labels = np.concatenate([lab for _, lab in tr])[keep] - 1
    assert len(splits.train) + len(splits.val) == int(keep.sum())
    assert len(splits.test) == int((written["val_data"][1] <= 120).sum())
    x, y = splits.train[0]  # no subset: the first training image, channel-major as in NB201
    mean, std = torch.tensor(IMAGENET16_MEAN).view(3, 1, 1), torch.tensor(IMAGENET16_STD).view(3, 1, 1)
    expected = (torch.from_numpy(data[0].reshape(3, 16, 16)).float() / 255 - mean) / std
    assert torch.allclose(x, expected, atol=1e-6) and int(y) == labels[0] == 0
    all_labels = [int(splits.train[i][1]) for i in range(len(splits.train))]
    assert min(all_labels) >= 0 and max(all_labels) <= 119


def test_imagenet16_contract_kit_and_registry(tmp_path):
    write_imagenet16(tmp_path)
    # augment off: the kit compares items of two identically seeded builds
    check_dataset("imagenet16-120", {"data_dir": str(tmp_path), "augment": False})
    assert Registry().create("dataset", {"name": "imagenet16-120", "params": {"data_dir": str(tmp_path)}})


def test_imagenet16_missing_or_foreign_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="val_data not found"):
        ImageNet16(ImageNet16.Config(data_dir=str(tmp_path))).splits(0)
    (tmp_path / "val_data").write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [1, 2]}))
    (tmp_path / "train_data_batch_1").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8),
                                                               "labels": [1, 2]}))
    with pytest.raises(DataError, match="768"):
        ImageNet16(ImageNet16.Config(data_dir=str(tmp_path))).splits(0)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_imagenet16_refuses_pickles_that_would_run_code(tmp_path):
    write_imagenet16(tmp_path)
    (tmp_path / "val_data").write_bytes(pickle.dumps({"data": _Evil(), "labels": [1]}))
    with pytest.raises(DataError, match="refusing"):
        ImageNet16(ImageNet16.Config(data_dir=str(tmp_path))).splits(0)


def write_image_folder(root: Path, classes: int = 3, per_class: int = 4) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for i in range(per_class):
                h, w = int(rng.integers(20, 40)), int(rng.integers(20, 40))  # ImageNet sizes vary
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.JPEG", "JPEG")


def test_imagenet_folder_with_darts_transforms(tmp_path):
    write_image_folder(tmp_path)
    splits = check_dataset("imagenet", {"data_dir": str(tmp_path), "image_size": 16, "augment": False})
    assert splits.shape.num_classes == 3 and splits.shape.height == 16
    assert len(splits.train) + len(splits.val) == 12 and len(splits.test) == 12
    # the search split is drawn across classes, not the first classes of the sorted folder
    labels = {int(splits.train[i][1]) for i in range(len(splits.train))}
    assert len(labels) >= 2
    ds = ImageNet(ImageNet.Config(data_dir=str(tmp_path), image_size=16))
    x, _ = ds.splits(0).train[0]  # augmented (random crop of a 20-40 px image) to the crop size
    assert x.shape == (3, 16, 16)
    train_tf, test_tf = ds.transforms()
    names = [type(t).__name__ for t in train_tf.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToTensor", "Normalize"]
    assert [type(t).__name__ for t in test_tf.transforms] == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert test_tf.transforms[0].size == round(16 * 256 / 224)


def test_imagenet_missing_tree_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="train"):
        ImageNet(ImageNet.Config(data_dir=str(tmp_path))).splits(0)
