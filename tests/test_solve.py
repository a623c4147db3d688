"""Problem -> solve() -> Solution on the compiled engine, each result against an independent route."""
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from exactdyn import ExactdynError, power_law
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.problem import InitialState, Problem, Status, exact
from exactdyn.solve import solve
from exactdyn.symbolic.cache import derive


def _mpmath_reference(problem, initial, alpha, dps):
    """eps_g(alpha) by mpmath's own Taylor-series ODE solver on the derived system, evaluated by
    lambdify at mpmath precision: shares the derivation with the engine and nothing else."""
    import sympy as sp

    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    table = overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                          initial.r, initial.q, initial.t, problem.eta)
    y0, params = assign(system, table)
    rhs = [system.explicit(e) for e in system.rhs]
    args = list(system.states) + list(system.params)
    f = sp.lambdify(args, rhs, "mpmath")
    eps = sp.lambdify(args, system.explicit(system.eps_g), "mpmath")
    with mpmath.workdps(dps):
        mp = lambda x: mpmath.mpf(x.numerator) / x.denominator
        p = [mp(Fraction(x)) for x in params]
        sol = mpmath.odefun(lambda _, y: f(*y, *p), 0, [mp(Fraction(v)) for v in y0])
        return [eps(*sol(mp(Fraction(a))), *p) for a in alpha]


@pytest.mark.parametrize("activation,K,M,L", [("erf", 2, 1, 2), ("cubic", 1, 1, 2), ("quadratic", 2, 1, 1)])
def test_taylor_digits_agree_with_independent_mpmath_odefun(activation, K, M, L):
    problem = Problem(activation, K, M, power_law(L, 1), Fraction(1, 20))
    initial = InitialState.expected(problem, Fraction(1, 2))
    alpha = [0, Fraction(1, 2), 1]
    sol = solve(problem, initial, alpha, digits=25)
    assert sol.status is Status.OK and not sol.rigorous and sol.digits == (25, 25, 25)
    ref = _mpmath_reference(problem, initial, alpha, 40)
    with mpmath.workdps(40):
        for value, r in zip(sol.eps_g, ref):
            assert abs(value - r) <= abs(r) * mpmath.mpf(10) ** -25


def test_float64_digits_hold_against_taylor():
    problem = Problem("erf", 2, 2, power_law(4, 1), "0.5")
    initial = InitialState.expected(problem, "0.5")
    alpha = [0, 5, 50, 200]
    fast = solve(problem, initial, alpha)
    assert fast.bits == 53 and min(fast.digits) >= 8
    ref = solve(problem, initial, alpha, digits=20)
    for value, d, r in zip(fast.eps_g, fast.digits, ref.eps_g):
        assert abs(value - float(r)) <= 10 ** -d * abs(float(r))


def test_mode_and_moment_bases_agree_at_high_precision():
    problem = Problem("erf", 2, 2, power_law(3, 1), "0.5")
    initial = InitialState.expected(problem, "0.5")
    alpha = [0, 2, 10]
    mode = solve(problem, initial, alpha, digits=30)
    moment = solve(problem, initial, alpha, digits=30, basis="moment")
    with mpmath.workdps(40):
        for a, b in zip(mode.eps_g, moment.eps_g):
            assert abs(a - b) <= abs(b) * mpmath.mpf(10) ** -29


def test_linear_certified_solver_agrees_with_the_engine():
    problem = Problem("linear", 1, 1, power_law(5, 1), "0.3")
    initial = InitialState.expected(problem, "0.5")
    alpha = [0, 1, 30]
    certified = solve(problem, initial, alpha, digits=20)
    assert certified.rigorous and certified.status is Status.OK and min(certified.digits) == 20
    engine = solve(problem, initial, alpha, digits=20, method="taylor")
    assert not engine.rigorous
    with mpmath.workdps(30):
        for ball, value in zip(certified.eps_g, engine.eps_g):
            assert abs(mpmath.mpf(ball.mid().str(30, radius=False)) - value) <= abs(value) * mpmath.mpf(10) ** -19


@pytest.mark.parametrize("digits", [None, 20])
def test_blow_up_is_an_error_naming_the_alpha_reached(digits):
    # a cubic network at this eta grows without bound before alpha = 1/2 (the eta^2 term wins)
    problem = Problem("cubic", 1, 1, power_law(2, 1), Fraction(1, 4))
    with pytest.raises(ExactdynError, match=r"diverged at alpha = 0\.[0-9]"):
        solve(problem, None, [0, Fraction(1, 2), 1], sigma_J=Fraction(1, 2), digits=digits)


def test_absurd_requests_are_refused_up_front():
    problem = Problem("erf", 2, 2, power_law(64, 1), "0.5")
    with pytest.raises(ExactdynError, match="would take about"):
        solve(problem, None, [0, 10 ** 6], digits=100, sigma_J="0.5")


@pytest.mark.parametrize("bad", [dict(digits=0), dict(digits=True), dict(method="rk4"), dict(basis="x"),
                                 dict(digits=30, method="float64")])
def test_bad_options_are_clear_errors(bad):
    problem = Problem("erf", 1, 1, power_law(1, 1), "0.5")
    with pytest.raises(ExactdynError):
        solve(problem, None, [0, 1], sigma_J="0.5", **bad)


def test_impossible_overlaps_are_refused():
    with pytest.raises(ExactdynError, match="Cauchy-Schwarz"):
        InitialState([[[5]]], [[[Fraction(1, 4)]]], [[[Fraction(1, 4)]]])
    with pytest.raises(ExactdynError, match="symmetric"):
        InitialState([[[0, 0], [0, 0]]], [[[1, 0.5], [0, 1]]], [[[1, 0], [0, 1]]])


def test_finite_n_draw_matches_its_own_overlaps():
    problem = Problem("erf", 2, 3, power_law(2, 1), "0.5")
    state = InitialState.draw(problem, 64, seed=3, sigma_J="0.5")
    assert (state.L, state.K, state.M) == (2, 2, 3)
    t_total = np.sum([np.array(t, float) for t in state.t], axis=0)
    assert np.allclose(np.diag(t_total), 1, atol=0.6)  # |B_n|^2 / N of a draw


def test_alpha_zero_alone_is_the_initial_error():
    problem = Problem("erf", 2, 2, power_law(2, 1), "0.5")
    initial = InitialState.expected(problem, "0.5")
    fast = solve(problem, initial, [0, 0])
    exact_start = solve(problem, initial, [0], digits=20)
    assert fast.digits == (15, 15) and exact_start.digits == (20,)
    assert abs(fast.eps_g[0] - float(exact_start.eps_g[0])) <= 1e-15 * float(exact_start.eps_g[0])


def test_numpy_alpha_grids_are_read_as_their_decimals():
    problem = Problem("erf", 1, 1, power_law(1, 1), "0.5")
    sol = solve(problem, InitialState.expected(problem, "0.5"), np.linspace(0, 1, 3))
    assert sol.alpha == (0, Fraction(1, 2), 1)


def test_linear_solve_refuses_up_front_past_max_seconds():
    """solve passes max_seconds to the certified linear solver, which estimates its cost before any work."""
    problem = Problem("linear", 1, 1, power_law(20000, 1), Fraction(1, 10))
    with pytest.raises(ExactdynError, match="would take about"):
        solve(problem, alpha=[1, 10], digits=30, max_seconds=1)
