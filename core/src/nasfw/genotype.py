"""One JSON format for discrete architectures, versioned and validated on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasfw.errors import GenotypeError

FORMAT = "nasfw-genotype"
VERSION = 1


class GenotypeEdge(BaseModel):
    """One chosen edge: ``op`` applied to node ``input``, summed into node ``node``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: int = Field(ge=0)
    input: int = Field(ge=0)
    op: str = Field(min_length=1)


class Genotype(BaseModel):
    """A discrete architecture of a named space.

    ``cells`` maps a cell type (``normal``, ``reduce``; ``cell`` for NB201) to its chosen edges.
    ``extra`` carries space-specific data (e.g. DARTS' concat list, a HyperCuboid path).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["nasfw-genotype"] = FORMAT
    version: Literal[1] = VERSION
    space: str = Field(min_length=1)
    cells: dict[str, list[GenotypeEdge]]
    extra: dict[str, Any] = Field(default_factory=dict)

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
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> Genotype:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise GenotypeError(
                f"{source}: invalid genotype at '{loc}': {err['msg']}; "
                f"expected {{'format': '{FORMAT}', 'version': {VERSION}, 'space': ..., 'cells': {{...}}}}"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise GenotypeError(f"genotype file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GenotypeError(f"{path}: not valid JSON ({exc}); a genotype is a JSON file") from None
        return cls.from_dict(data, source=str(path))


class ZooEntry(BaseModel):
    """A published genotype shipped by a plugin: the cells are a fact, so say where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    genotype: Genotype
    source: str = Field(min_length=1, description="paper / repository file the cells were transcribed from")
    notes: str = ""
