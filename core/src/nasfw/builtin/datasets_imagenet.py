"""ImageNet datasets: NB201's down-sampled ImageNet16-120 and full ImageNet in an ImageFolder tree.

``imagenet16-120`` reads the down-sampled ImageNet 16×16 pickles (Chrabaszcz et al. 2017) as
NAS-Bench-201 does: ``train_data_batch_1..10`` and ``val_data``, each a dict with ``data``
(N × 768 uint8, channel-major) and 1-based ``labels``; only classes 1..120 are kept. The pickles are
read with an unpickler that admits numpy arrays only, so a tampered file cannot run code.

``imagenet`` reads ``train/<class>/*`` and ``val/<class>/*`` lazily (the data does not fit in memory)
with DARTS' ImageNet transforms: RandomResizedCrop, flip and colour jitter for training, resize to
256/224 of the crop and centre crop for testing.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from nasfw.builtin.datasets import ImageDataConfig, make_splits
from nasfw.components import Dataset, StrictModel
from nasfw.data import DataShape, DataSplits
from nasfw.errors import DataError

IMAGENET16_MEAN = tuple(x / 255 for x in (122.68, 116.66, 104.01))
IMAGENET16_STD = tuple(x / 255 for x in (63.22, 61.26, 65.09))
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET16_TRAIN = [f"train_data_batch_{i}" for i in range(1, 11)]
IMAGENET16_VAL = "val_data"

_NUMPY_OK = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Admits plain containers and numpy arrays; anything else in the pickle is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_OK:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np

    try:
        with path.open("rb") as fh:
            entry = _ArrayUnpickler(fh, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{path} is not a down-sampled ImageNet batch (dict with 'data', 'labels'): {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 16 * 16 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{path}: 'data' must be N x 768 (16x16 RGB) with one label each, got {data.shape}")
    x = torch.from_numpy(data.reshape(-1, 3, 16, 16).copy())
    return x, torch.from_numpy(labels)


class ImageNet16(Dataset):
    """NAS-Bench-201's ImageNet16-120: 16×16 images of the first 120 ImageNet classes (labels 0..119)."""

    class Config(ImageDataConfig):
        num_classes: int = Field(default=120, ge=1, le=1000, description="keep classes 1..num_classes (NB201: 120)")

    def _root(self) -> Path:
        root = Path(self.config.data_dir).expanduser()
        for cand in (root, root / "ImageNet16", root / "imagenet16"):
            if (cand / IMAGENET16_VAL).is_file():
                return cand
        raise DataError(f"imagenet16-120: {root}/{IMAGENET16_VAL} not found; --data-dir must hold NB201's "
                        f"down-sampled ImageNet16 pickles (train_data_batch_1..10, val_data), from the "
                        f"NAS-Bench-201 README or image-net.org (downsampled 16x16)")

    def _load(self, files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [_read_batch(f) for f in files]
        x = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        keep = (y >= 1) & (y <= self.config.num_classes)
        return x[keep], y[keep] - 1

    def splits(self, seed: int) -> DataSplits:
        if self.config.download:
            raise DataError("imagenet16-120 cannot be downloaded automatically; get the 16x16 pickles "
                            "(see the NAS-Bench-201 README) and pass --data-dir")
        root = self._root()
        train_files = [root / f for f in IMAGENET16_TRAIN if (root / f).is_file()]
        if not train_files:
            raise DataError(f"imagenet16-120: no train_data_batch_* files in {root}")
        tx, ty = self._load(train_files)
        vx, vy = self._load([root / IMAGENET16_VAL])
        if tx.shape[0] < 2:
            raise DataError(f"imagenet16-120: fewer than 2 training images of classes 1..{self.config.num_classes}")
        splits = make_splits(self.config, tx, ty, vx, vy, IMAGENET16_MEAN, IMAGENET16_STD, self.config.num_classes,
                             seed, pad=2, name="imagenet16-120")
        splits.info["files"] = len(train_files)
        return splits


class _Transformed(torch.utils.data.Dataset):
    """Items ``indices`` of an ImageFolder, decoded and transformed lazily."""

    def __init__(self, folder: Any, indices: list[int], transform: Any):
        self.folder, self.indices, self.transform = folder, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, target = self.folder.samples[self.indices[i]]
        try:
            image = self.folder.loader(path)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's decode errors: one line naming the file
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DataError(f"cannot decode image {path}: {reason}; remove or replace the file") from None
        return self.transform(image), int(target)


class ImageNet(Dataset):
    """ImageNet in an ImageFolder tree (``train/``, ``val/``), with DARTS' ImageNet transforms.

    The search split is DARTS': a seeded ``train_portion`` of the (optionally subsampled) training
    images trains w, the rest trains α; both use the training transform. ``val/`` is the test set.
    """

    class Config(StrictModel):
        data_dir: str = Field(default="./data/imagenet", description="folder with train/<class>/ and val/<class>/")
        train_portion: float = Field(default=0.5, gt=0, lt=1, description="share of the training images that trains w")
        subset: int | None = Field(default=None, ge=2, description="use only this many training images (seeded)")
        test_subset: int | None = Field(default=None, ge=1, description="use only this many val images (seeded)")
        image_size: int = Field(default=224, ge=8, description="crop side (DARTS: 224)")
        resize: int | None = Field(default=None, ge=8, description="test-time resize before the centre crop "
                                   "(default: image_size * 256 / 224)")
        augment: bool = Field(default=True, description="RandomResizedCrop + flip (else resize + centre crop)")
        color_jitter: bool = Field(default=True, description="DARTS' ColorJitter(0.4, 0.4, 0.4, 0.2) in training")

    def _folder(self, root: Path, split: str) -> Any:
        import torchvision

        path = root / split
        if not path.is_dir():
            raise DataError(f"imagenet: {path} not found; --data-dir must hold train/<class>/ and val/<class>/")
        try:
            return torchvision.datasets.ImageFolder(str(path))
        except (FileNotFoundError, RuntimeError) as exc:
            raise DataError(f"imagenet: no images in {path}: {str(exc).splitlines()[0]}") from None

    def transforms(self) -> tuple[Any, Any]:
        """(training transform, test transform) as in DARTS' ``train_imagenet.py``."""
        from torchvision import transforms as T

        c = self.config
        normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        resize = c.resize or round(c.image_size * 256 / 224)
        test = T.Compose([T.Resize(resize), T.CenterCrop(c.image_size), T.ToTensor(), normalize])
        if not c.augment:
            return test, test
        train = [T.RandomResizedCrop(c.image_size), T.RandomHorizontalFlip()]
        if c.color_jitter:
            train.append(T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2))
        return T.Compose([*train, T.ToTensor(), normalize]), test

    def splits(self, seed: int) -> DataSplits:
        c = self.config
        root = Path(c.data_dir).expanduser()
        train = self._folder(root, "train")
        test_split = "val" if (root / "val").is_dir() else "test"
        test = self._folder(root, test_split) if (root / test_split).is_dir() else None
        if test is not None and test.classes != train.classes:
            raise DataError(f"imagenet: {test_split}/ classes differ from train/ classes ({test.classes[:3]}...)")
        g = torch.Generator().manual_seed(seed + 7919)
        order = torch.randperm(len(train.samples), generator=g).tolist()  # ImageFolder is sorted by class
        if c.subset is not None:
            order = order[: c.subset]
        n_train = int(c.train_portion * len(order))
        if n_train < 1 or n_train >= len(order):
            raise DataError(f"imagenet: train_portion {c.train_portion} leaves an empty split of {len(order)} images")
        train_tf, test_tf = self.transforms()
        test_ds = None
        if test is not None:
            tidx = list(range(len(test.samples)))
            if c.test_subset is not None and c.test_subset < len(tidx):
                gt = torch.Generator().manual_seed(seed + 1)
                tidx = sorted(torch.randperm(len(tidx), generator=gt)[: c.test_subset].tolist())
            test_ds = _Transformed(test, tidx, test_tf)
        shape = DataShape(3, c.image_size, c.image_size, len(train.classes))
        info = {"dataset": "imagenet", "train": n_train, "val": len(order) - n_train,
                "test": 0 if test_ds is None else len(test_ds)}
        return DataSplits(_Transformed(train, order[:n_train], train_tf),
                          _Transformed(train, order[n_train:], train_tf), test_ds, shape, info)
