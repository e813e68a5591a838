"""nasfw: plugin-based neural architecture search on PyTorch."""

from nasfw.hookspecs import API_VERSION, hookimpl

__version__ = "0.1.0"

__all__ = ["API_VERSION", "__version__", "hookimpl"]
