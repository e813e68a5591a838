"""The NAS-Bench-201 cell search space and its tabular ground truth for nasfw."""

from nasfw_space_nb201.benchmark import NB201Benchmark
from nasfw_space_nb201.cells import from_string, to_string
from nasfw_space_nb201.network import NB201Network, NB201Supernet
from nasfw_space_nb201.ops import NB201_OPS
from nasfw_space_nb201.space import NB201Space

__all__ = ["NB201_OPS", "NB201Benchmark", "NB201Network", "NB201Space", "NB201Supernet", "from_string", "to_string"]
