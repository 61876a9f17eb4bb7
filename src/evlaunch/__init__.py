"""evlaunch: simulate a newcomer's electric-car launch — path, launch month, sales, money, uncertainty."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evlaunch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
