"""metric-stream: the Daily Index Tracker's core (models, ports, adapters, services)."""

__version__ = "0.1.0"  # the one place the version lives (pyproject reads it)

__all__ = ["__version__"]
