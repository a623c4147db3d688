"""tanh and sigmoid: expectations by quadrature, checked against independent computations, and the
ODE against finite-N SGD."""
from dataclasses import replace
from fractions import Fraction as F
from functools import lru_cache
import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from exactdyn import ExactdynError, InitialState, PrecisionError, Problem, solve
from exactdyn.activations import Sigmoid, Tanh
from exactdyn.cli import main
from exactdyn.numeric import quadrature as qd
from exactdyn.simulate.sgd import simulate
from exactdyn.solve import _values
from exactdyn.symbolic.cache import derive
from exactdyn.symbolic.expectations import slot_covariance
from exactdyn.symbolic.hierarchy import ETA
from exactdyn.symbolic.quadrature_activations import TanhGaussian

COV2 = [[1, F(1, 2)], [F(1, 2), F(3, 4)]]


def _mp_derivative(d):
    """tanh^(d) written out by hand, for the references (independent of the package's polynomials)."""
    return {0: mp.tanh, 1: lambda x: mp.sech(x) ** 2, 2: lambda x: -2 * mp.tanh(x) * mp.sech(x) ** 2,
            3: lambda x: 4 * mp.tanh(x) ** 2 * mp.sech(x) ** 2 - 2 * mp.sech(x) ** 4}[d]


def _mp_reference(factors, cov, dps):
    """E[prod_a f_a(u_a)], u ~ N(0, cov), 1 or 2 slots, in mpmath: mp.quad for one slot; for two,
    the trapezoidal rule in Cholesky-whitened variables, h = 1/6 and |z| <= 10 (for these analytic
    integrands its error is below 10^-20: strips of half-width >= pi/2, tail mass e^-50)."""
    with mp.workdps(dps):
        cov = [[mp.mpf(x.numerator) / x.denominator for x in map(F, row)] for row in cov]
        phi = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)
        if len(factors) == 1:
            s = mp.sqrt(cov[0][0])
            return mp.quad(lambda z: phi(z) * factors[0](s * z), [-mp.inf, -2, 0, 2, mp.inf])
        a = mp.sqrt(cov[0][0])
        b = cov[0][1] / a
        c = mp.sqrt(cov[1][1] - b * b)
        h = mp.mpf(1) / 6
        zs = [k * h for k in range(-60, 61)]
        w = [h * phi(z) for z in zs]
        inner = [sum(wj * factors[1](b * z1 + c * z2) for z2, wj in zip(zs, w)) for z1 in zs]
        return sum(wi * factors[0](a * z1) * g for z1, wi, g in zip(zs, w, inner))


@lru_cache(maxsize=None)
def _certified(orders, cov, digits):
    return qd.certified_expectation(orders, [list(r) for r in cov], digits)


def _tuple(cov):
    return tuple(tuple(r) for r in cov)


def _arb(x, dps):
    import flint

    with flint.ctx.workprec(int(dps * 3.33) + 10):
        return flint.arb(mp.nstr(x, dps + 2))


def test_tanh_polynomials_match_sympy():
    x = sp.Symbol("x")
    for d in range(4):
        coeffs = qd.tanh_polynomial((d,))
        mine = sum(c * sp.tanh(x) ** k for k, c in enumerate(coeffs))
        assert sp.simplify((sp.diff(sp.tanh(x), x, d) - mine).rewrite(sp.exp)) == 0


CASES = [  # (orders, covariance, digits claimed)
    (((0, 0),), ((F(7, 10),),), 30),
    (((1, 1),), ((F(3, 2),),), 30),
    (((0, 1, 1, 0),), ((F(1, 3),),), 30),
    (((2,), (0,)), _tuple(COV2), 10),
    (((1,), (1,)), _tuple(COV2), 10),
]


@pytest.mark.parametrize("orders, cov, digits", CASES)
def test_certified_tanh_expectations_against_mpmath(orders, cov, digits):
    """Must show: each certified ball contains an independent mpmath value (40 digits for one slot,
    25 for two) and is narrow enough for the digits claimed; a covariance off by 10^-(digits-2)
    gives a ball that misses the reference (the check can fail; two slots: at 10 digits, C_11 + 1e-8)."""
    factors = [lambda x, o=o: mp.fprod(_mp_derivative(d)(x) for d in o) for o in orders]
    dps = 40 if len(orders) == 1 else 25
    reference = _arb(_mp_reference(factors, cov, dps), dps)
    ball = _certified(orders, cov, digits)
    assert ball.rel_accuracy_bits() >= (digits + 1) * math.log2(10)
    assert ball.overlaps(reference) and abs(float((ball - reference).mid())) <= 10.0 ** -digits * abs(float(ball.mid()))
    if len(orders) == 1:  # (shown by hand for two slots: the check costs as much again)
        planted = qd.certified_expectation(orders, [[cov[0][0] + F(1, 10 ** (digits - 2))]], digits)
        assert not planted.overlaps(reference)


def test_sigmoid_reduction_against_direct_sigmoid_quadrature():
    """sigmoid expectations (derived as sums of tanh ones at C/4) against mpmath on the sigmoid
    itself; the reduction's coefficients 1/4 changed to 1/3 (planted) miss."""
    sig = lambda x: 1 / (1 + mp.exp(-x))
    dsig = lambda x: sig(x) * (1 - sig(x))
    for derivs, f in (((0, 0), lambda x: sig(x) ** 2), ((1, 1), lambda x: dsig(x) ** 2)):
        expr = Sigmoid().expectation(derivs)
        # one field in both slots: C_11 = C_12 = C_22
        number = expr.xreplace({s: sp.Rational(6, 5) for s in slot_covariance(2)})
        value = qd.certified_value(number, 25)
        reference = _arb(_mp_reference([f], [[F(6, 5)]], 40), 40)
        assert value.overlaps(reference) and value.rel_accuracy_bits() > 26 * math.log2(10)
        if derivs == (0, 0):
            assert not qd.certified_value(number.subs(sp.Rational(1, 4), sp.Rational(1, 3)), 25).overlaps(reference)


def test_two_slot_sigmoid_against_direct_sigmoid_quadrature():
    sig = lambda x: 1 / (1 + mp.exp(-x))
    C = slot_covariance(2)
    expr = Sigmoid().expectation((0, 0)).xreplace({C[0, 0]: 1, C[0, 1]: sp.Rational(1, 2), C[1, 1]: sp.Rational(3, 4)})
    assert expr.has(TanhGaussian)
    reference = _arb(_mp_reference([sig, sig], COV2, 25), 25)
    assert qd.certified_value(expr, 10).overlaps(reference)


def test_expectation_nodes_merge_fields_and_vanish_when_odd():
    C = slot_covariance(2)
    node = Tanh().expectation((1, 0))
    assert node == 0  # tanh' tanh is odd
    same = Tanh().expectation((2, 0)).xreplace({C[0, 0]: C[0, 0], C[0, 1]: C[0, 0], C[1, 1]: C[0, 0]})
    assert same.orders == ((0, 2),) and same.args[1] == sp.Tuple(C[0, 0])
    assert r"\tanh''(u_{1})" in sp.latex(Tanh().expectation((2, 0)))


@pytest.mark.parametrize("grids, ok", [(None, True), (qd.CHECK_GRIDS, True), ({1: (0.5, 8.5), 2: (0.5, 8.5)}, False)])
def test_float_quadrature_within_stated_accuracy(grids, ok):
    """float64 trapezoid quadrature (default and check grids) within 1e-12 (relative) of the
    certified values for one and two slots; a grid of step 0.5 (planted) is not."""
    errors = []
    for orders, cov, digits in CASES:
        exact = float(_certified(orders, cov, digits).mid())
        value = qd.float_expectation(orders, [[float(c) for c in r] for r in cov], grids)
        errors.append(abs(value - exact) / abs(exact))
    assert (max(errors) <= 1e-12) == ok, errors


@pytest.mark.parametrize("grids, ok", [(None, True), (qd.CHECK_GRIDS, True), ({3: (0.6, 7.5), 4: (0.6, 7.5)}, False)])
def test_three_and_four_slots_against_factorised_certified_values(grids, ok):
    """Independent blocks: the 3- and 4-slot float quadrature (default and check grids, rotated
    against the blocks: the covariance is not diagonal) against products of certified values,
    within 1e-10 (three slots) and 1e-9 (four); a grid of step 0.6 (planted) is not."""
    two = float(_certified(((1,), (1,)), _tuple(COV2), 10).mid())
    one = float(_certified(((0, 0),), ((F(7, 10),),), 30).mid())
    three = [[1, .5, 0], [.5, .75, 0], [0, 0, .7]]
    four = [[1, .5, 0, 0], [.5, .75, 0, 0], [0, 0, 1, .5], [0, 0, .5, .75]]
    close = (abs(qd.float_expectation(((1,), (1,), (0, 0)), three, grids) / (two * one) - 1) < 1e-10
             and abs(qd.float_expectation(((1,), (1,), (1,), (1,)), four, grids) / two ** 2 - 1) < 1e-9)
    assert close == ok
    # the certified path sees the blocks too, and an odd block makes the value exactly 0
    assert qd.certified_expectation(((1,), (1,), (0,)), [[1, F(1, 2), 0], [F(1, 2), F(3, 4), 0], [0, 0, 1]], 20) == 0


def test_correlated_four_slots_against_monte_carlo():
    """A fully correlated 4-slot expectation (the eta^2 term's kind) against 400 000 Monte Carlo
    samples, within 4 standard errors (|z| 2.0); with the u_1-u_3 covariance dropped (planted) 13."""
    C = np.array([[1.2, .3, .5, .2], [.3, .8, .1, .4], [.5, .1, 1., .3], [.2, .4, .3, .9]])
    u = np.random.default_rng(5).multivariate_normal(np.zeros(4), C, size=400_000)
    t = np.tanh(u)
    sample = (1 - t[:, 0] ** 2) * (1 - t[:, 1] ** 2) * t[:, 2] * t[:, 3]
    mean, se = sample.mean(), sample.std() / math.sqrt(len(sample))
    assert abs(qd.float_expectation(((1,), (1,), (0,), (0,)), C) - mean) < 4 * se
    dropped = C.copy()
    dropped[0, 2] = dropped[2, 0] = 0
    assert abs(qd.float_expectation(((1,), (1,), (0,), (0,)), dropped) - mean) > 4 * se


def test_unreachable_digits_are_refused():
    """Must show: quadrature that cannot reach the digits asked is refused up front (cost estimate)
    or after the fact (the ball falls short), in the library and as one line, exit 2, in the CLI."""
    with pytest.raises(PrecisionError, match="integrand evaluations"):
        qd.certified_expectation(((1,), (0,), (0,)), [[1, F(1, 5), F(1, 5)], [F(1, 5), 1, F(1, 5)],
                                                     [F(1, 5), F(1, 5), 1]], 12)
    with pytest.raises(PrecisionError, match="integrand evaluations"):
        qd.certified_expectation(((0,), (0,)), COV2, 90)
    with pytest.raises(PrecisionError, match="near 0"):  # a value of size 1e-40: no relative digits
        qd.certified_expectation(((0,), (0,)), [[1, F(1, 10 ** 40)], [F(1, 10 ** 40), 1]], 5)
    problem = Problem("tanh", 1, 1, eta="0.5")
    with pytest.raises(PrecisionError, match="out of reach"):
        solve(problem, InitialState.expected(problem, "0.5"), [0, 1], digits=30)
    with pytest.raises(ExactdynError, match="quadrature points"):
        solve(Problem("tanh", 3, 1, eta="0.5"), None, [0, 1], sigma_J="0.5")


def test_cli_unreachable_digits_one_line_exit_2(capsys):
    argv = ["solve", "--activation", "tanh", "--K", "1", "--M", "1", "--L", "1", "--eta", "0.5", "--sigma-J",
            "0.5", "--alpha", "0,1", "--digits", "30"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("exactdyn: error: 30 digits are out of reach") and "\n" not in err


def test_derive_prints_latex_for_tanh(capsys):
    assert main(["derive", "--activation", "tanh", "--K", "1", "--M", "1", "--L", "1", "--format", "latex"]) == 0
    text = capsys.readouterr().out
    assert r"\tanh'(u_{1})" in text and r"\end{document}" in text


def _sgd_gate(activation, K, M, drop_eta2=False):
    """z-scores of the mean SGD overlaps (30 seeds, N = 500, all from one draw) against the ODE."""
    N, seeds, alpha = 500, 30, [0, 0.5, 1, 2]
    problem = Problem(activation, K, M, eta=1)
    initial = InitialState.draw(problem, N, seed=7, sigma_J="0.5")
    system = derive(problem.structure, "mode")
    if drop_eta2:  # planted: the ODE without its eta^2 term
        system = replace(system, rhs=tuple(sp.expand(r) - sp.expand(r).coeff(ETA, 2) * ETA ** 2 for r in system.rhs))
    ode = qd.solve_quadrature(problem, system, *_values(system, problem, initial), alpha, overlaps=True)
    assert ode.ok and min(ode.digits) >= 6
    sim = simulate(problem.structure, [1.0], [1.0], 1.0, alpha, N=N, seeds=range(seeds), sigma_J=0.5, init_seed=7)
    z = []
    for name in ode.overlaps[0]:
        kind, (_, a, b) = name[0], map(int, name[1:].split("_"))
        runs = (sim.r if kind == "r" else sim.q)[1:, :, 0, a - 1, b - 1]
        mean, se = runs.mean(1), runs.std(1, ddof=1) / math.sqrt(seeds)
        z += list((mean - np.array([o[name] for o in ode.overlaps[1:]])) / se)
    return np.abs(z)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_ode_matches_sgd_k1(activation):
    """K = M = 1 at eta = 1: every overlap within 4 standard errors of SGD at alpha = 0.5, 1, 2
    (largest |z| 1.9); without the eta^2 term (planted) 66 (tanh) and 8.3 (sigmoid)."""
    assert _sgd_gate(activation, 1, 1).max() < 4
    assert _sgd_gate(activation, 1, 1, drop_eta2=True).max() > 4


def test_ode_matches_sgd_k2_m1():
    """K = 2, M = 1 at eta = 1 (three-slot expectations in the eta^2 term): within 4 standard errors
    (largest |z| 2.4; without the eta^2 term, shown once by hand, 72)."""
    assert _sgd_gate("tanh", 2, 1).max() < 4


def test_simulated_eps_g_of_tanh_against_monte_carlo_of_its_overlaps():
    """`simulate`'s eps_g for tanh goes through the quadrature's eps_g: checked at the drawn state by
    sampling the two fields with the simulated overlaps (K = M = 1)."""
    from exactdyn.simulate.sgd import eps_g_of, simulate
    from exactdyn.symbolic.hierarchy import Structure

    structure = Structure.named("tanh", 1, 1, 1)
    sim = simulate(structure, [1.0], [1.0], 0.5, [0.5], N=200, seeds=[3], sigma_J=0.8)
    q, r, t = sim.q[0, 0, 0, 0, 0], sim.r[0, 0, 0, 0, 0], sim.t[0, 0, 0, 0]
    fields = np.random.default_rng(1).multivariate_normal([0, 0], [[q, r], [r, t]], size=400_000)
    sample = (np.tanh(fields[:, 0]) - np.tanh(fields[:, 1])) ** 2 / 2
    got = eps_g_of(sim, structure, 0.5)[0, 0]
    assert abs(got - sample.mean()) < 4 * sample.std() / np.sqrt(len(sample))
    assert abs(1.1 * got - sample.mean()) > 4 * sample.std() / np.sqrt(len(sample))  # a 10% slip is seen
