"""Supply side: production capacity and the order book, ownership, marginal-cost recovery and
multiproduct Bertrand-Nash pricing (see :mod:`evlaunch.supply.equilibrium`)."""
