"""The grouped float64 path (one compiled group, BDF with the exact sparse Jacobian) against the
whole compiled system: same rhs, same Jacobian, same trajectory by another integrator."""
from fractions import Fraction

import numpy as np
import pytest

from exactdyn import power_law
from exactdyn.numeric import engine, grouped
from exactdyn.problem import InitialState, Problem, Status
from exactdyn.solve import _values, solve
from exactdyn.symbolic.cache import derive

# (activation, K, M, L); the cubic network blows up at alpha = 0.6847 (test below), so it runs to 1/2
CASES = [("erf", 2, 2, 5), ("quadratic", 2, 1, 4), ("cubic", 1, 2, 3), ("erf", 3, 1, 2)]


def _setup(activation, K, M, L, eta=Fraction(1, 20)):
    problem = Problem(activation, K, M, power_law(L, 1), eta)
    system = derive(problem.structure, "mode")
    y0, params = _values(system, problem, InitialState.expected(problem, Fraction(1, 2)))
    return system, y0, params


def _state(form, y0, params, seed):
    """A random state near y0, as the arrowhead's (groups, aggregates) vector and as the system's."""
    rng = np.random.default_rng(seed)
    full = np.array([float(v) for v in y0]) * (1 + 0.2 * rng.standard_normal(len(y0)))
    arrow = grouped._Arrowhead(form, params)
    groups = full[form.states]
    return arrow, np.concatenate([groups.ravel(), arrow.aggregates(groups)]), full


@pytest.mark.parametrize("case", CASES)
def test_one_group_batched_equals_the_whole_compiled_rhs(case):
    system, y0, params = _setup(*case)
    form = grouped.group_form(system)
    arrow, y, full = _state(form, y0, params, 1)
    compiled = engine.compile_system(system)
    cf = engine._float_cfunc(compiled, "rhs")
    pars = np.array(compiled.parameter_values(params, engine.float_number))[:cf.nparams]
    whole = cf(full, pars=pars)
    mine = np.empty_like(whole)
    mine[form.states.ravel()] = arrow.rhs(0.0, y)[:arrow.n]
    np.testing.assert_allclose(mine, whole, rtol=1e-12, atol=1e-14)
    # the aggregates' rate is the sum of the groups' rates it is made of (a central difference)
    step = 1e-6
    agg = lambda v: arrow.aggregates(v[:arrow.n].reshape(form.states.shape))
    moved = y.copy()
    moved[:arrow.n] += step * arrow.rhs(0.0, y)[:arrow.n]
    np.testing.assert_allclose((agg(moved) - agg(y)) / step, arrow.rhs(0.0, y)[arrow.n:], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_sparse_jacobian_matches_central_differences(case):
    system, y0, params = _setup(*case)
    form = grouped.group_form(system)
    arrow, y, _ = _state(form, y0, params, 2)
    jac = arrow.jacobian(0.0, y).toarray()
    h = 1e-6
    for column in np.random.default_rng(3).choice(len(y), size=min(len(y), 12), replace=False):
        e = np.zeros(len(y))
        e[column] = h
        difference = (arrow.rhs(0.0, y + e) - arrow.rhs(0.0, y - e)) / (2 * h)
        np.testing.assert_allclose(jac[:, column], difference, rtol=1e-6, atol=1e-8)
    # a wrong Jacobian entry would be seen: the check above is not vacuous
    assert np.count_nonzero(jac) > len(y)


@pytest.mark.parametrize("case", CASES)
def test_bdf_trajectory_agrees_with_lsoda_on_the_whole_system(case):
    system, y0, params = _setup(*case)
    alpha = [0, Fraction(1, 10), Fraction(1, 2)] if case[0] == "cubic" else [0, Fraction(1, 2), 5, 40]
    mine = grouped.integrate_groups(grouped.group_form(system), y0, params, alpha, rtol=1e-12)
    other = engine.integrate_float(engine.compile_system(system), y0, params, alpha, rtol=1e-12)
    np.testing.assert_allclose(mine.eps_g, other.eps_g, rtol=1e-8)
    np.testing.assert_allclose(np.array(mine.states), np.array(other.states), rtol=1e-8, atol=1e-10)


def test_moment_basis_has_no_groups():
    problem = Problem("erf", 2, 2, power_law(3, 1), "0.5")
    assert grouped.group_form(derive(problem.structure, "moment")) is None


def test_rounding_floor_is_reported_per_point_not_hidden():
    # L = 4 learns its teacher to ~1e-15 before alpha = 10^4: those points are rounding in float64
    problem = Problem("erf", 2, 2, power_law(4, 1), "0.5")
    sol = solve(problem, None, [0, 10, 100, 1000, 10_000], sigma_J="0.5")
    assert sol.status is Status.PARTIAL and "ask digits" in sol.message
    assert min(sol.digits[:3]) >= 8 and sol.digits[-1] <= 2   # eps_g: 1e-2, 1e-3, 1e-10, 1e-15


def test_bdf_steps_on_past_the_rounding_floor():
    # BDF's step collapses there at the first absolute tolerance; the retries carry it to the end
    system, y0, params = _setup("erf", 2, 2, 4, eta=Fraction(1, 2))
    run = grouped.integrate_groups(grouped.group_form(system), y0, params, [0, 10, 10_000], rtol=1e-13)
    assert np.all(np.isfinite(run.eps_g)) and abs(run.eps_g[-1]) < 1e-12 < run.eps_g[1]


def test_large_systems_take_the_grouped_path():
    problem = Problem("erf", 2, 2, power_law(24, 1), "0.5")
    sol = solve(problem, None, [0, 1, 50], sigma_J="0.5")
    assert "BDF" in sol.method and min(sol.digits) >= 9
    small = solve(Problem("erf", 2, 2, power_law(4, 1), "0.5"), None, [0, 1, 50], sigma_J="0.5")
    assert "LSODA" in small.method


def test_blow_up_in_the_grouped_path_names_the_alpha():
    # Taylor in MPFR (test_solve's route) puts this blow-up at alpha = 0.684735
    system, y0, params = _setup("cubic", 1, 2, 3)
    with pytest.raises(grouped.ExactdynError, match=r"diverged at alpha = 0\.68"):
        grouped.integrate_groups(grouped.group_form(system), y0, params, [0, 1, 40], rtol=1e-12)
