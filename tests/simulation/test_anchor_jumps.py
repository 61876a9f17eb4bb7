"""The anchor at the no-entrant equilibrium (`simulation.simulate.anchor_at_equilibrium`): Aitken's jumps
reach the plain alternation's fixed point with fewer equilibrium solves; a jump that misses is undone."""

import importlib

import numpy as np

from evlaunch.runs.sampling import sample_draws

simulate_module = importlib.import_module("evlaunch.simulation.simulate")


def test_a_jump_that_misses_is_undone_and_its_round_not_counted():
    prices = np.array([[10.0], [20.0]])
    jumps = simulate_module.AnchorJumps(prices)
    jumps.changes[:] = [[-0.1, 0.01], [-0.1, 0.01]]              # ratio -0.1, then again -0.1: steady
    jumps.rounds[:] = 3
    last = prices.copy()
    prices[:] = [[11.0], [21.0]]
    assert jumps.extrapolate(prices, last, np.array([-0.001, -0.001]), np.ones(2, dtype=bool))
    np.testing.assert_allclose(prices, [[11.0 - 1.0 / 11.0], [21.0 - 1.0 / 11.0]])  # ratio / (1 - ratio) = -1/11
    jumps.rounds += 1
    change = np.array([1e-8, 1e-5])        # the first lands (1e-8 <= 1e-3 * 1e-3), the second misses
    assert jumps.check(prices, change)
    np.testing.assert_allclose(prices, [[11.0 - 1.0 / 11.0], [21.0]])
    np.testing.assert_array_equal(jumps.rounds, [4, 3])
    np.testing.assert_array_equal(jumps.barred, [False, True])
    assert change[1] == -0.001 and not jumps.pending.any()


def count_row_solves(monkeypatch) -> list[int]:
    solved: list[int] = []
    plain = simulate_module.solve_incumbents

    def counted(state, rows, *args):
        solved.append(int(rows.sum()))
        return plain(state, rows, *args)

    monkeypatch.setattr(simulate_module, "solve_incumbents", counted)
    return solved


def test_jumps_reach_the_plain_alternations_anchor_with_fewer_solves(reference_model, monkeypatch):
    parameters = reference_model.parameters(sample_draws(reference_model, 5, 0, 24))
    solved = count_row_solves(monkeypatch)
    jumped = simulate_module.prepare_setting(reference_model, parameters)
    with_jumps = sum(solved)
    solved.clear()
    monkeypatch.setattr(simulate_module, "ANCHOR_STEADY_RATIO", 0.0)   # no draw is steady: the plain rounds
    plain = simulate_module.prepare_setting(reference_model, parameters)
    assert with_jumps < 0.85 * sum(solved)
    steps = range(plain.demand.lead, plain.demand.periods)
    anchors = [np.stack([setting.demand.outside_offset(step) for step in steps]) for setting in (jumped, plain)]
    np.testing.assert_allclose(anchors[0], anchors[1], rtol=0, atol=1e-8)   # the tolerance: 1e-7 per round
