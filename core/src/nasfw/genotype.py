"""One JSON format for discrete architectures, versioned and validated on load.

Validation is strict and bounded, because a genotype file is user input that ``eval``, ``show``, ``--resume``
and the zoo all read: no type coercion (``"node": "2"`` and ``"input": true`` are errors, not 2 and 1), node
indices, names, cells and edges have size limits, a file is at most :data:`MAX_FILE_BYTES`, and nesting or
integer literals that would exhaust the parser are one-line errors. Whether a genotype fits a space (its
ops, node ranges and edge counts) is :meth:`nasfw.components.SearchSpace.check_genotype`;
:func:`nasfw.zoo.resolve` runs both for every command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from nasfw.errors import GenotypeError

FORMAT = "nasfw-genotype"
VERSION = 1
#: Limits of a genotype (far above any real space: DARTS has 8 edges per cell, NB201 6).
MAX_FILE_BYTES = 1 << 20
MAX_NODE = 10_000
MAX_NAME = 128
MAX_CELLS = 64
MAX_EDGES = 4096
MAX_EXTRA_BYTES = 64 << 10
MAX_EXTRA_DEPTH = 16

Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME)]


class GenotypeEdge(BaseModel):
    """One chosen edge: ``op`` applied to node ``input``, summed into node ``node``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: StrictInt = Field(ge=0, le=MAX_NODE)
    input: StrictInt = Field(ge=0, le=MAX_NODE)
    op: Name


class Genotype(BaseModel):
    """A discrete architecture of a named space.

    ``cells`` maps a cell type (``normal``, ``reduce``; ``cell`` for NB201) to its chosen edges.
    ``extra`` carries space-specific data (e.g. DARTS' concat list, a HyperCuboid path).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["nasfw-genotype"] = FORMAT
    version: Literal[1] = VERSION
    space: Name
    cells: Annotated[dict[Name, Annotated[list[GenotypeEdge], Field(max_length=MAX_EDGES)]],
                     Field(max_length=MAX_CELLS)]
    extra: dict[StrictStr, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _version_is_an_int(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), bool):  # Literal[1] would take True
            raise ValueError(f"version must be the integer {VERSION}, not a boolean")
        return data

    @model_validator(mode="after")
    def _bounded(self) -> Genotype:
        total = sum(len(v) for v in self.cells.values())
        if total > MAX_EDGES:
            raise ValueError(f"{total} edges in all; a genotype holds at most {MAX_EDGES}")
        for cell, edges in self.cells.items():
            seen: set[tuple[int, int]] = set()
            for e in edges:
                if (e.node, e.input) in seen:
                    raise ValueError(f"cell '{cell}' has the edge {e.input}->{e.node} twice (one op per edge)")
                seen.add((e.node, e.input))
        if self.extra:
            _check_extra(self.extra)
        return self

    def key(self) -> str:
        """A canonical string, usable as a set or dict key."""
        cells = {k: sorted((e.node, e.input, e.op) for e in v) for k, v in sorted(self.cells.items())}
        return json.dumps([self.space, cells, self.extra], sort_keys=True)

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Genotype) and self.key() == other.key()

    def ops(self, cell: str | None = None) -> list[str]:
        """All ops used, in order (of one cell type, or of all)."""
        cells = [cell] if cell else sorted(self.cells)
        return [e.op for c in cells for e in self.cells[c]]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def save(self, path: str | Path) -> None:
        from nasfw.outputs import write_text_atomic

        write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> Genotype:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(_short(str(p), 40) for p in err["loc"]) or "(top level)"
            raise GenotypeError(
                f"{source}: invalid genotype at '{loc}': {_short(err['msg'], 200)}; "
                f"expected {{'format': '{FORMAT}', 'version': {VERSION}, 'space': ..., 'cells': {{...}}}}"
            ) from None
        except RecursionError:
            raise GenotypeError(f"{source}: nested too deeply to be a genotype") from None

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """Read and validate a genotype file (size-limited; see the module docstring)."""
        path = Path(path)
        try:
            if path.is_dir():
                raise GenotypeError(f"{path} is a directory; pass a genotype.json file (or a run directory "
                                    f"holding one)")
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise GenotypeError(f"{path} is {size:,} bytes; a genotype file is at most {MAX_FILE_BYTES:,} bytes")
            with open(path, "rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise GenotypeError(f"genotype file not found: {path}") from None
        except OSError as exc:
            raise GenotypeError(f"cannot read genotype file {path}: {exc.strerror or exc}") from None
        if len(raw) > MAX_FILE_BYTES:  # a pipe or a file that grew
            raise GenotypeError(f"{path} holds more than {MAX_FILE_BYTES:,} bytes; that is not a genotype")
        if not raw.strip():
            raise GenotypeError(f"{path} is empty; a genotype is a JSON file")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GenotypeError(f"{path}: not valid JSON ({_short(str(exc), 120)}); a genotype is a JSON file") \
                from None
        except RecursionError:
            raise GenotypeError(f"{path}: brackets nested too deeply; not a genotype") from None
        except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
            raise GenotypeError(f"{path}: unusable JSON ({_short(str(exc), 120)})") from None
        return cls.from_dict(data, source=str(path))


def _short(text: str, n: int) -> str:
    """A user string cut for a one-line message (a 10**6-character op name must not become the message)."""
    return text if len(text) <= n else text[: n - 3] + "..."


def _check_extra(extra: dict[str, Any]) -> None:
    """``extra`` is free-form JSON: bound its depth and size so it cannot stall saving or hashing."""
    def depth(v: Any, d: int) -> None:
        if d > MAX_EXTRA_DEPTH:
            raise ValueError(f"extra is nested more than {MAX_EXTRA_DEPTH} levels deep")
        if isinstance(v, dict):
            for x in v.values():
                depth(x, d + 1)
        elif isinstance(v, (list, tuple)):
            for x in v:
                depth(x, d + 1)

    depth(extra, 0)
    try:
        size = len(json.dumps(extra, default=str))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"extra is not JSON data ({type(exc).__name__})") from None
    if size > MAX_EXTRA_BYTES:
        raise ValueError(f"extra holds {size:,} bytes of JSON; at most {MAX_EXTRA_BYTES:,}")


class ZooEntry(BaseModel):
    """A published genotype shipped by a plugin: the cells are a fact, so say where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    genotype: Genotype
    source: str = Field(min_length=1, description="paper / repository file the cells were transcribed from")
    notes: str = ""
