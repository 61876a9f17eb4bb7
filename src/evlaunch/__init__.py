"""evlaunch: simulate a newcomer's electric-car launch — path, launch month, sales, money, uncertainty."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evlaunch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"


def bundled_scenarios_dir():
    """The reference scenarios shipped with the package (xiaomi-2021.toml, xiaomi-2023.toml)."""
    from pathlib import Path

    return Path(__file__).resolve().parent / "scenarios"


def default_scenarios_dir():
    """./scenarios when there is one (a checkout, or the analyst's own), else the bundled reference scenarios."""
    from pathlib import Path

    local = Path("scenarios")
    return local if local.is_dir() else bundled_scenarios_dir()
