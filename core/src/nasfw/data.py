"""Data plumbing shared by every dataset: shapes, splits and resumable batch streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataShape:
    """What a space needs to know about the data to size its network."""

    channels: int
    height: int
    width: int
    num_classes: int


@dataclass
class DataSplits:
    """Datasets of a search: ``train`` trains w, ``val`` trains α (the DARTS split), ``test`` reports."""

    train: Dataset
    val: Dataset
    test: Dataset | None
    shape: DataShape
    info: dict[str, Any] = field(default_factory=dict)


class _OrderSampler(Sampler[int]):
    def __init__(self, order: Sequence[int]):
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class BatchStream:
    """An endless, seeded, resumable stream of batches over one dataset.

    The order of epoch ``e`` is a permutation drawn from ``seed`` and ``e`` only, so the position
    (epoch, offset) is the whole state: a resumed run sees exactly the batches it would have seen.
    Unlike ``next(iter(loader))`` per step (the reference DARTS code), it never rebuilds workers.

    With ``dist`` (a :class:`nasfw.distributed.Dist` of several processes) each rank loads only its share of
    every global batch of ``batch_size``; epoch and offset still count global batches, so the state does not
    depend on the number of processes and a run resumes under any world size.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        dist: Any = None,
    ):
        self.dataset = dataset
        self.dist = dist
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.epoch = 0
        self.offset = 0  # batches already consumed in this epoch
        self._it: Iterator | None = None
        self._spec_open: tuple[int, int] = (0, 1)

    def _spec(self) -> tuple[int, int]:
        return (0, 1) if self.dist is None else (self.dist.rank, self.dist.world_size)

    def _check_spec(self) -> None:
        # Dist.solo() changes the effective world size: reopen at the same global position
        if self._it is not None and self.dist is not None and self._spec() != self._spec_open:
            self._it = None

    def __len__(self) -> int:
        n = len(self.dataset)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self, epoch: int) -> list[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        if not self.shuffle:
            return list(range(n))
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**64)  # any 63-bit seed
        return torch.randperm(n, generator=g).tolist()

    def _open(self) -> None:
        order = self._order(self.epoch)[self.offset * self.batch_size :]
        self._spec_open = self._spec()
        if self._spec_open[1] > 1:
            bs = self.batch_size
            batches = [order[i : i + bs] for i in range(0, len(order), bs)]
            if self.drop_last:
                batches = [b for b in batches if len(b) == bs]
            self._it = iter(DataLoader(
                self.dataset, batch_sampler=[self.dist.share(b) for b in batches], num_workers=self.num_workers,
                collate_fn=self.collate_fn, pin_memory=self.pin_memory, persistent_workers=False))
            return
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=_OrderSampler(order),
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        self._it = iter(loader)

    def epoch_batches(self) -> Iterator[Batch]:
        """Yield the rest of the current epoch, then advance to the next epoch."""
        self._check_spec()
        if self._it is None:
            self._open()
        assert self._it is not None
        for batch in self._it:
            self.offset += 1
            yield batch
        self.epoch += 1
        self.offset = 0
        self._it = None

    def next(self) -> Batch:
        """The next batch, wrapping around epochs forever."""
        self._check_spec()
        while True:
            if self._it is None:
                self._open()
            assert self._it is not None
            try:
                batch = next(self._it)
            except StopIteration:
                self.epoch += 1
                self.offset = 0
                self._it = None
                continue
            self.offset += 1
            return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset, self.seed = int(state["epoch"]), int(state["offset"]), int(state["seed"])
        self._it = None


@dataclass
class SearchData:
    """The streams a search uses: ``train`` (w), ``val`` (α), and ``aux`` streams plugins ask for."""

    splits: DataSplits
    train: BatchStream
    val: BatchStream
    test: BatchStream | None
    streams: dict[str, BatchStream] = field(default_factory=dict)
    stream_factory: Callable[[str, str, int], BatchStream] | None = None
    _pending: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> DataShape:
        return self.splits.shape

    def stream(self, name: str, split: str = "val", batch_size: int | None = None) -> BatchStream:
        """A named extra stream over a split (e.g. ZARTS' inner batches); its position is checkpointed."""
        if name not in self.streams:
            assert self.stream_factory is not None
            stream = self.stream_factory(name, split, batch_size or self.val.batch_size)
            if name in self._pending:
                stream.load_state_dict(self._pending[name])
            self.streams[name] = stream
        return self.streams[name]

    def state_dict(self) -> dict[str, Any]:
        return {
            "train": self.train.state_dict(),
            "val": self.val.state_dict(),
            "streams": {k: s.state_dict() for k, s in self.streams.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train.load_state_dict(state["train"])
        self.val.load_state_dict(state["val"])
        self._pending = dict(state.get("streams", {}))
        for name, stream in self.streams.items():
            if name in self._pending:
                stream.load_state_dict(self._pending[name])
