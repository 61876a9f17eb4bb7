"""`python -m evlaunch.cli` = the `evlaunch` command."""

from evlaunch.cli import main

main()
