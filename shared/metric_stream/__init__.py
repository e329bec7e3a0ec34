"""metric-stream: the Daily Index Tracker's core (models, ports, adapters, services)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metric-stream")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
