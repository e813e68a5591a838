"""Rank study of our zero-cost proxies on NAS-Bench-201 cells with real CIFAR-10 images.

Cells: a seeded random sample of NASLib's CIFAR-10 zero-cost subset (``naslib_zc_subsets``), so every cell
has both its NB201 200-epoch CIFAR-10 test accuracy (``nb201_nats_tss_acc``) and NASLib's own proxy scores.
Batch: 64 CIFAR-10 training images from ``cifar10_jpeg`` (seeded, CIFAR normalisation, no augmentation).
Networks: NB201 stand-alone networks (C=16, N=5), each initialised from the same seed.

Rows are appended to a CSV as they are computed (the study can be stopped and resumed); the table of
Spearman ρ (vs test accuracy, vs NASLib's score of the same cell) is written as Markdown.

    OMP_NUM_THREADS=1 python scripts/nb201_proxy_study.py --archs 300 --out results/
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch

from nasfw.data import DataShape
from nasfw.registry import get_registry
from nasfw_freedarts.proxies import PROXIES
from nasfw_freedarts.scoring import rank_correlations

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PUBLISHED = {"synflow": 0.737, "jacob_cov": 0.731, "snip": 0.596, "grasp": 0.514, "fisher": 0.360, "grad_norm": 0.594}
NASLIB_NAME = {"jacob_cov": "jacov"}
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The CIFAR train transform zero-cost-nas' loader applies: random 32×32 crop of the 4-padded image and a
    random horizontal flip (seeded)."""
    g = torch.Generator().manual_seed(seed)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        top, left = (int(v) for v in torch.randint(0, 9, (2,), generator=g))
        img = padded[i, :, top:top + 32, left:left + 32]
        out[i] = img.flip(-1) if bool(torch.rand(1, generator=g) < 0.5) else img
    return out


def cifar_batch(n: int, seed: int, data: Path = DATA, augmented: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded CIFAR-10 training images (normalised) and labels straight from the JPEG tarball."""
    from PIL import Image

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with tarfile.open(data / "cifar10_jpeg" / "CIFAR-10-images_jpeg.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and "/train/" in m.name and m.name.endswith(".jpg")]
        members.sort(key=lambda m: m.name)
        picked = random.Random(seed).sample(members, n)
        xs, ys = [], []
        for m in picked:
            img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")  # type: ignore[union-attr]
            xs.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1))
            ys.append(classes.index(m.name.split("/")[-2]))
    x = torch.stack(xs)
    if augmented:
        x = augment(x, seed)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.tensor(ys)


def load_accuracies(data: Path = DATA) -> dict[str, float]:
    """NB201 200-epoch CIFAR-10 test accuracy of all 15,625 cells, in NATS index order."""
    with (data / "nb201_nats_tss_acc" / "nats_bench.csv").open() as fh:
        return {r["ArchitectureString"]: float(r["CIFAR10TestAccuracy200Epochs"]) for r in csv.DictReader(fh)}


def uniform_cells(n: int, seed: int, data: Path = DATA) -> list[dict[str, float | str]]:
    """``n`` cells drawn uniformly from all 15,625 (what the published correlations are over), with NASLib's
    scores attached to the few that are also in its subset."""
    naslib = {str(c["arch"]): c for c in load_cells(data)}
    acc = load_accuracies(data)
    picked = random.Random(seed).sample(list(acc), n)
    return [naslib.get(a, {"arch": a, "test_acc": acc[a]}) for a in picked]


def load_cells(data: Path = DATA) -> list[dict[str, float | str]]:
    """NASLib's CIFAR-10 zero-cost subset: every cell has our ground truth and NASLib's own scores."""
    acc = load_accuracies(data)
    cells = []
    with (data / "naslib_zc_subsets" / "nb201_zc_subset.csv").open() as fh:
        for r in csv.DictReader(fh):
            if r["dataset"] == "cifar10":
                row: dict[str, float | str] = {"arch": r["arch_str"], "test_acc": acc[r["arch_str"]]}
                for name in PROXIES:
                    col = NASLIB_NAME.get(name, name)
                    if col in r and r[col] != "":
                        row[f"naslib_{name}"] = float(r[col])
                cells.append(row)
    return cells


def _rho(c: dict | None, n: int) -> str:
    """ρ, with its n when fewer cells have NASLib scores than ours (the uniform sample)."""
    return "–" if c is None else f"{c['spearman']:.3f}" + (f" (n={c['n']})" if c["n"] != n else "")


def table(rows: list[dict], names: list[str], subset: list[dict] | None = None) -> str:
    """Spearman ρ per proxy: ours and NASLib's on the studied cells, their agreement, the published value and
    (``subset``) NASLib's on every cell of its subset, which tells a sampling effect from an implementation one."""
    ours = rank_correlations(rows, "test_acc", names)
    whole = rank_correlations(subset, "test_acc", [f"naslib_{n}" for n in names]) if subset else {}
    lines = ["| proxy | n | ρ ours vs C10 test acc | published ρ (zero-cost-nas, all 15,625) | ρ NASLib vs test acc "
             "(same cells) | ρ ours vs NASLib (same cells) | ρ NASLib vs test acc (whole NASLib subset, n) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in names:
        nl = f"naslib_{n}"
        theirs = rank_correlations(rows, "test_acc", [nl])[nl] if any(nl in r for r in rows) else None
        agree = rank_correlations([{**r} for r in rows if nl in r], nl, [n])[n] if theirs else None
        pub = PUBLISHED.get(n)
        cells = [f"{ours[n]['spearman']:.3f}", f"{pub:.3f}" if pub is not None else "–",
                 _rho(theirs, ours[n]["n"]), _rho(agree, ours[n]["n"]),
                 f"{whole[nl]['spearman']:.3f} ({whole[nl]['n']})" if nl in whole and whole[nl]["n"] else "–"]
        lines.append(f"| {n} | {ours[n]['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=300)
    ap.add_argument("--grasp-archs", type=int, default=None, help="score grasp on only the first N cells (slow)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cell sample, the batch and (default) the init")
    ap.add_argument("--init-seed", type=int, default=None,
                    help="seed of the network weights only (same cells and batch): measures init noise")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--augment", action="store_true",
                    help="crop + flip the batch like zero-cost-nas' train loader (default: plain images)")
    ap.add_argument("--cells", choices=["naslib", "uniform"], default="naslib",
                    help="naslib: a shuffle of NASLib's 724-cell subset (cell-by-cell comparison with NASLib); "
                         "uniform: a uniform sample of all 15,625 cells (comparison with the published ρ)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    ap.add_argument("--against", type=Path, default=None,
                    help="another run's CSV: also print ρ between its scores and these on the common cells")
    args = ap.parse_args(argv)
    if not (DATA / "cifar10_jpeg").is_dir():
        print(f"data not found under {DATA}", file=sys.stderr)
        return 2
    names = [n for n in args.proxies.split(",") if n]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "nb201_proxy_study" + ("_uniform" if args.cells == "uniform" else "")
    csv_path = args.out / f"{stem}.csv"
    if args.cells == "uniform":
        cells = uniform_cells(args.archs, args.seed)
    else:
        cells = load_cells()
        random.Random(args.seed).shuffle(cells)
        cells = cells[: args.archs]
    done: dict[str, dict] = read_rows(csv_path) if csv_path.exists() else {}
    x, y = cifar_batch(args.batch_size, args.seed, augmented=args.augment)
    init_seed = args.seed if args.init_seed is None else args.init_seed
    space = get_registry().create("search_space", "nb201")
    shape = DataShape(3, 32, 32, 10)
    fields = ["arch", "test_acc", *names, *[f"naslib_{n}" for n in names]]
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        for i, cell in enumerate(cells):
            if cell["arch"] in done:
                continue
            torch.manual_seed(init_seed)
            net = space.build_network(space.parse(str(cell["arch"])), shape)
            row = dict(cell)
            for n in names:
                if n == "grasp" and args.grasp_archs is not None and i >= args.grasp_archs:
                    row[n] = float("nan")
                    continue
                torch.manual_seed(init_seed)
                row[n] = PROXIES[n](net, x, y)
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
            fh.flush()
            done[str(cell["arch"])] = row
            print(f"{len(done)}/{len(cells)} {cell['arch']}", file=sys.stderr, flush=True)
    rows = [done[str(c["arch"])] for c in cells if str(c["arch"]) in done]
    where = "uniform over all 15,625" if args.cells == "uniform" else "from NASLib's subset"
    md = (f"# NB201 zero-cost proxy study ({len(rows)} cells {where}, CIFAR-10 JPEG batch of {args.batch_size}"
          f"{', augmented' if args.augment else ''}, seed {args.seed}"
          f"{'' if args.init_seed is None else f', init seed {args.init_seed}'})\n\n"
          "Made by `scripts/nb201_proxy_study.py`. Spearman ρ (signed).\n\n"
          + table(rows, names, load_cells()))
    if args.against is not None:
        md += "\n" + agreement(rows, read_rows(args.against), names)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return 0


def read_rows(path: Path) -> dict[str, dict]:
    """A study CSV as {arch: row}; blank cells are NaN."""
    with path.open() as fh:
        return {r["arch"]: {k: (v if k == "arch" else float(v) if v != "" else float("nan")) for k, v in r.items()}
                for r in csv.DictReader(fh)}


def agreement(rows: list[dict], other: dict[str, dict], names: list[str]) -> str:
    """ρ between two runs (e.g. two init seeds) of each proxy on their common cells, next to each run's ρ
    with NASLib: if NASLib agrees with us about as well as we agree with ourselves, the gap is noise."""
    lines = ["| proxy | common cells | ρ this run vs other run | ρ this run vs NASLib | ρ other run vs NASLib |",
             "| --- | --- | --- | --- | --- |"]
    for n in names:
        both = [{"a": r[n], "b": other[r["arch"]][n], "nl": r.get(f"naslib_{n}", float("nan"))}
                for r in rows if r["arch"] in other and n in other[r["arch"]]]
        ab = rank_correlations(both, "b", ["a"])["a"]
        an = rank_correlations(both, "nl", ["a"])["a"]
        bn = rank_correlations(both, "nl", ["b"])["b"]
        lines.append(f"| {n} | {ab['n']} | {ab['spearman']:.3f} | {_rho(an, ab['n'])} | {_rho(bn, ab['n'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
