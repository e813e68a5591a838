"""Built-in datasets: embedded digits, torchvision CIFAR/SVHN, and ImageFolder trees.

Images are held in memory as uint8 tensors and augmented on tensors (random crop with padding,
horizontal flip, cutout), which keeps a 2-core CPU busy with the network, not with PIL. The search
split is the DARTS one: the training set's first ``train_portion`` trains the weights, the rest
trains α; the test set is only reported.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field

from nasfw.components import Dataset, StrictModel
from nasfw.data import DataShape, DataSplits
from nasfw.errors import DataError

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)


class TensorImages(torch.utils.data.Dataset):
    """uint8 images (N, C, H, W) and labels, normalised and optionally augmented per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
                 augment: bool = False, pad: int = 4, flip: bool = True, cutout: int = 0):
        assert images.dtype == torch.uint8 and images.dim() == 4
        self.images, self.labels = images, labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment, self.pad, self.flip, self.cutout = augment, pad, flip, cutout

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i].float().div_(255)
        if self.augment:
            _, h, w = x.shape
            if self.pad:
                x = F.pad(x, (self.pad,) * 4)
                dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
                x = x[:, dy : dy + h, dx : dx + w]
            if self.flip and bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        x = (x - self.mean) / self.std
        if self.augment and self.cutout > 0:
            _, h, w = x.shape
            cy, cx = torch.randint(0, h, ()).item(), torch.randint(0, w, ()).item()
            r = self.cutout // 2
            x = x.clone()
            x[:, max(0, cy - r) : min(h, cy + r), max(0, cx - r) : min(w, cx + r)] = 0
        return x, self.labels[i]


class ImageDataConfig(StrictModel):
    data_dir: str = Field(default="./data", description="where the dataset files are (or go, with download)")
    download: bool = Field(default=False, description="download through torchvision if missing")
    train_portion: float = Field(default=0.5, gt=0, lt=1, description="share of the training set that trains w")
    subset: int | None = Field(default=None, ge=2, description="use only this many training images (seeded)")
    test_subset: int | None = Field(default=None, ge=1, description="use only this many test images")
    resize: int | None = Field(default=None, ge=4, description="resize images to this side (down-sampling)")
    augment: bool = Field(default=True, description="random crop + flip on the search splits (DARTS)")
    cutout: int = Field(default=0, ge=0, description="cutout length (0 = off, as in DARTS search)")


def _resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or images.shape[-1] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _subset(n: int, k: int | None, seed: int) -> torch.Tensor:
    if k is None or k >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed + 7919)
    return torch.randperm(n, generator=g)[:k].sort().values


def make_splits(cfg: ImageDataConfig, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor | None,
                test_y: torch.Tensor | None, mean: tuple[float, ...], std: tuple[float, ...], num_classes: int,
                seed: int, pad: int = 4, name: str = "") -> DataSplits:
    """The DARTS search split of a training set, plus the test set."""
    idx = _subset(train_x.shape[0], cfg.subset, seed)
    train_x, train_y = _resize(train_x[idx], cfg.resize), train_y[idx]
    split = int(cfg.train_portion * train_x.shape[0])
    if split < 1 or split >= train_x.shape[0]:
        raise DataError(f"{name}: train_portion {cfg.train_portion} leaves an empty split of {train_x.shape[0]} images")
    aug = dict(augment=cfg.augment, pad=pad if cfg.augment else 0, cutout=cfg.cutout)
    train = TensorImages(train_x[:split], train_y[:split], mean, std, **aug)
    val = TensorImages(train_x[split:], train_y[split:], mean, std, **aug)
    test = None
    if test_x is not None and test_y is not None:
        tidx = _subset(test_x.shape[0], cfg.test_subset, seed + 1)
        test = TensorImages(_resize(test_x[tidx], cfg.resize), test_y[tidx], mean, std)
    c, h, w = train_x.shape[1:]
    info = {"dataset": name, "train": split, "val": train_x.shape[0] - split, "test": 0 if test is None else len(test)}
    return DataSplits(train, val, test, DataShape(c, h, w, num_classes), info)


class Digits(Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data, offline."""

    class Config(StrictModel):
        train_portion: float = Field(default=0.5, gt=0, lt=1)
        test_fraction: float = Field(default=0.2, gt=0, lt=1)
        resize: int | None = Field(default=None, ge=4)
        augment: bool = False

    def splits(self, seed: int) -> DataSplits:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
        x = x.round().to(torch.uint8)
        y = torch.tensor(d.target)
        g = torch.Generator().manual_seed(20240601)  # fixed test split, independent of the run seed
        perm = torch.randperm(len(y), generator=g)
        n_test = int(self.config.test_fraction * len(y))
        test_idx, train_idx = perm[:n_test], perm[n_test:]
        cfg = ImageDataConfig(train_portion=self.config.train_portion, resize=self.config.resize,
                              augment=self.config.augment)
        mean, std = (0.2625,), (0.3773,)
        return make_splits(cfg, x[train_idx], y[train_idx], x[test_idx], y[test_idx], mean, std, 10, seed,
                           pad=1, name="digits")


class Synthetic(Dataset):
    """Seeded random images of any shape (one noisy prototype per class): for speed benchmarks and
    smoke tests at real input sizes, where the numbers must not depend on a dataset being present."""

    class Config(StrictModel):
        channels: int = Field(default=3, ge=1)
        size: int = Field(default=32, ge=1, description="height and width")
        num_classes: int = Field(default=10, ge=2)
        n_train: int = Field(default=512, ge=2, description="images split into w-train and α-val halves")
        n_test: int = Field(default=128, ge=0)
        noise: float = Field(default=1.0, ge=0)

    def splits(self, seed: int) -> DataSplits:
        c = self.config
        shape = DataShape(c.channels, c.size, c.size, c.num_classes)
        g = torch.Generator().manual_seed((seed * 7919 + 17) % 2**64)
        proto = torch.randn(c.num_classes, c.channels, c.size, c.size, generator=g)

        def make(n: int) -> torch.utils.data.TensorDataset:
            y = torch.randint(0, c.num_classes, (n,), generator=g)
            x = proto[y] + c.noise * torch.randn(n, c.channels, c.size, c.size, generator=g)
            return torch.utils.data.TensorDataset(x, y)

        half = c.n_train // 2
        test = make(c.n_test) if c.n_test else None
        return DataSplits(make(half), make(c.n_train - half), test, shape, {"dataset": "synthetic"})


def _missing(name: str, root: Path, what: str) -> DataError:
    return DataError(
        f"{name} not found in {root} ({what}); put the files there, point --data-dir at them, "
        f"or allow downloading with --set dataset.download=true")


class _TorchvisionCIFAR(Dataset):
    Config = ImageDataConfig
    tv_name = "CIFAR10"
    mean, std, num_classes = CIFAR10_MEAN, CIFAR10_STD, 10

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        import torchvision

        root = Path(self.config.data_dir).expanduser()
        cls = getattr(torchvision.datasets, self.tv_name)
        try:
            ds = cls(root=str(root), train=train, download=self.config.download)
        except RuntimeError as exc:
            raise _missing(self.tv_name, root, str(exc).splitlines()[0]) from None
        except Exception as exc:  # corrupt archive, network failure on download
            raise DataError(f"{self.tv_name} in {root} could not be read: {type(exc).__name__}: {exc}") from None
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(ds.targets)

    def splits(self, seed: int) -> DataSplits:
        tx, ty = self._load(True)
        vx, vy = self._load(False)
        return make_splits(self.config, tx, ty, vx, vy, self.mean, self.std, self.num_classes, seed,
                           name=self.tv_name.lower())


class CIFAR10(_TorchvisionCIFAR):
    """CIFAR-10 (torchvision's python-pickle format)."""


class CIFAR100(_TorchvisionCIFAR):
    """CIFAR-100 (torchvision's python-pickle format)."""

    tv_name = "CIFAR100"
    mean, std, num_classes = CIFAR100_MEAN, CIFAR100_STD, 100


class SVHN(Dataset):
    """SVHN (torchvision's .mat format: train_32x32.mat, test_32x32.mat)."""

    Config = ImageDataConfig

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        import torchvision

        root = Path(self.config.data_dir).expanduser()
        try:
            ds = torchvision.datasets.SVHN(root=str(root), split=split, download=self.config.download)
        except RuntimeError as exc:
            raise _missing("SVHN", root, str(exc).splitlines()[0]) from None
        except Exception as exc:
            raise DataError(f"SVHN in {root} could not be read: {type(exc).__name__}: {exc}") from None
        return torch.from_numpy(ds.data).contiguous(), torch.tensor(ds.labels)

    def splits(self, seed: int) -> DataSplits:
        tx, ty = self._load("train")
        vx, vy = self._load("test")
        return make_splits(self.config, tx, ty, vx, vy, SVHN_MEAN, SVHN_STD, 10, seed, pad=4, name="svhn")


def _cache_dir() -> Path:
    return Path(os.environ.get("NASFW_CACHE", Path.home() / ".cache" / "nasfw"))


def load_image_folder(root: Path, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode an ImageFolder tree into uint8 (N, C, H, W); cached by path, size and file count."""
    import numpy as np
    import torchvision
    from PIL import Image

    try:
        folder = torchvision.datasets.ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"no images in {root}: {str(exc).splitlines()[0]}; expected {root}/<class>/<image>") from None
    key = hashlib.sha1(f"{root.resolve()}|{size}|{len(folder.samples)}|{root.stat().st_mtime}".encode()).hexdigest()
    cache = _cache_dir() / f"imagefolder-{key[:16]}.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True)
            return blob["x"], blob["y"], list(folder.classes)
        except Exception:
            pass
    arrays = []
    for path, _ in folder.samples:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                arrays.append(np.asarray(im, dtype=np.uint8))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # PIL's decode errors
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DataError(f"cannot decode image {path}: {reason}; remove or replace the file") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images in {root} have different sizes {sorted(shapes)[:3]}; set dataset.resize "
                        f"(e.g. --set dataset.resize=32) to resize them all to one square size")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([t for _, t in folder.samples])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        torch.save({"x": x, "y": y}, tmp)
        os.replace(tmp, cache)
    except OSError:
        pass
    return x, y, list(folder.classes)


class ImageFolderData(Dataset):
    """An ImageFolder tree with ``train/`` and ``test/`` (e.g. CIFAR-10 as JPEG files)."""

    class Config(ImageDataConfig):
        mean: tuple[float, ...] | None = Field(default=None, description="per-channel mean (default: measured)")
        std: tuple[float, ...] | None = None

    def splits(self, seed: int) -> DataSplits:
        root = Path(self.config.data_dir).expanduser()
        if not (root / "train").is_dir():
            subdirs = [p for p in root.glob("*/train") if p.is_dir()] if root.is_dir() else []
            if len(subdirs) == 1:
                root = subdirs[0].parent
            else:
                raise DataError(f"image-folder: {root}/train not found; --data-dir must hold train/<class>/ "
                                f"and test/<class>/ folders")
        tx, ty, classes = load_image_folder(root / "train", self.config.resize)
        # ImageFolder lists images class by class: without a shuffle the DARTS split would give w and α
        # disjoint classes. A fixed order (not the run's seed), like CIFAR's own, keeps the split the same.
        order = torch.randperm(tx.shape[0], generator=torch.Generator().manual_seed(2019))
        tx, ty = tx[order], ty[order]
        test = (root / "test")
        vx = vy = None
        if test.is_dir():
            vx, vy, tclasses = load_image_folder(test, self.config.resize)
            if tclasses != classes:
                raise DataError(f"image-folder: test classes {tclasses[:5]} differ from train classes {classes[:5]}")
        mean, std = self.config.mean, self.config.std
        if mean is None or std is None:
            sample = tx[_subset(tx.shape[0], 5000, 0)].float() / 255
            mean = tuple(sample.mean(dim=(0, 2, 3)).tolist())
            std = tuple(sample.std(dim=(0, 2, 3)).tolist())
        return make_splits(self.config, tx, ty, vx, vy, mean, std, len(classes), seed, name="image-folder")
