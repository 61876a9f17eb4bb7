"""The simulation: `prepare` a scenario into a `Model`, then `simulate(model, inputs)` per-draw outputs."""

from evlaunch.simulation.model import Model, prepare
from evlaunch.simulation.simulate import simulate

__all__ = ["Model", "prepare", "simulate"]
