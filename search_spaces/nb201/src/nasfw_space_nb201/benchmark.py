"""The ``nb201`` benchmark: true test accuracies of a cell on CIFAR-10, CIFAR-100 and ImageNet16-120.

Two sources: (a) a CSV in the layout of NATS-Bench TSS accuracy tables (columns
``CIFAR10TestAccuracy200Epochs, CIFAR100TestAccuracy200Epochs, ImageNetTestAccuracy200Epochs,
ArchitectureString``; row i = benchmark index i), or (b) the official NAS-Bench-201 ``.pth`` file read
through the ``nas-bench-201`` package. Tables are loaded once per process and indexed by cell string.
"""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from nasfw.components import Benchmark, StrictModel
from nasfw.errors import DataError
from nasfw.genotype import Genotype
from nasfw_space_nb201.cells import from_string, ops_of, to_string

ENV_VAR = "NASFW_NB201_TABLE"
CSV_NAME = "nats_bench.csv"
#: CSV column -> result key
COLUMNS = {
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNetTestAccuracy200Epochs": "imagenet16-120",
}
#: result key -> dataset name of the official API
API_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
HOW_TO_GET = ("get nats_bench.csv (NATS-Bench TSS accuracies, e.g. from github.com/v-tao/nats-bench-landscape) "
              f"and point {ENV_VAR} or --set benchmark.path=... at it")

_lock = threading.Lock()
_tables: dict[str, dict[str, tuple[int, dict[str, float]]]] = {}
_apis: dict[str, Any] = {}


def default_table_path() -> Path:
    """``$NASFW_NB201_TABLE``, else ``<repo>/../shared/data/nb201_nats_tss_acc`` (the repo's data folder)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[4].parent / "shared" / "data" / "nb201_nats_tss_acc"


def _csv_file(path: Path) -> Path:
    f = path / CSV_NAME if path.is_dir() else path
    if not f.is_file():
        raise DataError(f"NAS-Bench-201 table not found: {f}; {HOW_TO_GET}")
    return f


def load_table(path: Path) -> dict[str, tuple[int, dict[str, float]]]:
    """Cell string -> (benchmark index, accuracies); parsed once per process per file."""
    f = _csv_file(path).resolve()
    key = str(f)
    with _lock:
        if key in _tables:
            return _tables[key]
        table: dict[str, tuple[int, dict[str, float]]] = {}
        with f.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in [*COLUMNS, "ArchitectureString"] if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{f} is not an NB201 accuracy table: missing column(s) {', '.join(missing)}")
            for index, row in enumerate(reader):
                try:
                    arch = to_string(from_string(row["ArchitectureString"]))
                    accs = {k: float(row[c]) for c, k in COLUMNS.items()}
                except (ValueError, TypeError) as exc:
                    raise DataError(f"{f}, row {index + 2}: cannot read ({exc})") from None
                table[arch] = (index, accs)
        _tables[key] = table
        return table


def load_api(path: Path) -> Any:
    """The official NAS-Bench-201 API over a ``.pth`` file, built once per process (the file is GBs)."""
    f = path.expanduser().resolve()
    with _lock:
        if str(f) in _apis:
            return _apis[str(f)]
        if not f.is_file():
            raise DataError(f"NAS-Bench-201 file not found: {f}; download NAS-Bench-201-v1_*.pth from the "
                            "NAS-Bench-201 README, or use the CSV table (benchmark.path)")
        try:
            from nas_201_api import NASBench201API
        except ImportError:
            raise DataError("reading the official NAS-Bench-201 file needs the 'nas-bench-201' package: "
                            "pip install 'nasfw-space-nb201[official]'") from None
        api = NASBench201API(str(f), verbose=False)
        _apis[str(f)] = api
        return api


def _api_accuracy(api: Any, index: int, dataset: str) -> float:
    """Mean test accuracy over seeds after the 200-epoch schedule (``hp='200'`` on newer APIs)."""
    try:
        info = api.get_more_info(index, dataset, hp="200", is_random=False)
    except TypeError:  # the 2020-02-25 API has no ``hp`` and always reports the 200-epoch schedule
        info = api.get_more_info(index, dataset, None, False, is_random=False)
    return float(info["test-accuracy"])


class NB201Benchmark(Benchmark):
    """True NB201 accuracies (%) of a cell: ``cifar10`` (train+valid → test), ``cifar100`` and
    ``imagenet16-120`` (x-test halves), all after 200 epochs, averaged over seeds."""

    spaces: ClassVar[tuple[str, ...]] = ("nb201",)

    class Config(StrictModel):
        path: str | None = Field(default=None, description=f"CSV file or folder with {CSV_NAME} "
                                 f"(default: ${ENV_VAR}, then <repo>/../shared/data/nb201_nats_tss_acc)")
        api_file: str | None = Field(default=None, description="official NAS-Bench-201 .pth file; "
                                     "used instead of the CSV (needs the nas-bench-201 package)")

    def query(self, genotype: Genotype) -> dict[str, float]:
        """``index`` (the benchmark's architecture index) and ``<dataset>_test_acc`` in percent."""
        arch = to_string(ops_of(genotype))
        if self.config.api_file:
            api = load_api(Path(self.config.api_file))
            index = int(api.query_index_by_arch(arch))
            if index < 0:
                raise DataError(f"cell {arch} is not in {self.config.api_file}")
            accs = {k: _api_accuracy(api, index, ds) for k, ds in API_DATASETS.items()}
        else:
            path = Path(self.config.path).expanduser() if self.config.path else default_table_path()
            table = load_table(path)
            if arch not in table:
                raise DataError(f"cell {arch} is not in the NB201 table {_csv_file(path)} (is the table complete?)")
            index, accs = table[arch]
        return {"index": index, **{f"{k}_test_acc": v for k, v in accs.items()}}
