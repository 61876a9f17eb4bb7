"""evlaunch: simulate a newcomer's electric-car launch — path, launch month, sales, money, uncertainty."""

from evlaunch._version import __version__
from evlaunch.config.locations import bundled_scenarios_dir, default_scenarios_dir

__all__ = ["__version__", "bundled_scenarios_dir", "default_scenarios_dir"]
