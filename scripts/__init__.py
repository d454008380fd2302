"""Maintenance commands of the repository, run from its root as ``python -m scripts.NAME``."""
