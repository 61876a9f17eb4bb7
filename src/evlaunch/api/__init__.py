"""The public Python API's implementation (re-exported lazily by `evlaunch`; import from there).

The top layer beside `cli` and `web`: it builds on `runs`, `studies`, `analysis` and `report` and is
what the command line and the dashboard can be thin layers over.
"""
