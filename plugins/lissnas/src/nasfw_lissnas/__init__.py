"""nasfw-lissnas: LISSNAS (Gopal et al., IJCAI 2023) search-space shrinkage, reconstructed, plus a baseline."""

__version__ = "0.1.0"
