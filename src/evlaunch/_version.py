"""The installed package's version (`0.0.0+source` when running from a source tree without installation)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evlaunch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
