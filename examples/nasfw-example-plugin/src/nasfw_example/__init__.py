"""nasfw-example-plugin: how a third party extends nasfw without touching it (see CONTRIBUTING.md)."""

__version__ = "0.1.0"
