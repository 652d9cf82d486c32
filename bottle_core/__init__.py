"""bottle: run AI coding agents in sealed sandboxes. This package is the core."""

from .hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
