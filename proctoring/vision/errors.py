"""The vision engine's error. A module that imports nothing, so that every model module can raise it at the top
level (it lived in packs.py, which imports the model registry, which imports the model modules: a circle)."""

from __future__ import annotations


class ModelPackError(RuntimeError):
    """A pack is unknown, missing, incomplete or corrupt. The message names the fix."""
