"""ReLU end to end: the derived closed-form Gaussian expectations against Monte Carlo and quadrature,
every right-hand side of the hierarchy against Monte Carlo of the SGD increment, and the ODE
against finite-N one-pass SGD; each check is shown to reject a planted error of a few percent."""
import json

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

import test_hierarchy_mc as hmc
from exactdyn import ExactdynError, Structure, derive_mode, derive_moment, power_law
from exactdyn.cli import main
from exactdyn.problem import InitialState, Problem
from exactdyn.simulate.sgd import simulate
from exactdyn.solve import solve
from exactdyn.symbolic import expectations, serialize
from exactdyn.symbolic.expectations import Relu, activation_from_name, slot_covariance

RELU = Relu()
GATE = 4  # standard errors
hmc.ACTS["relu"] = (RELU, lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float))


def _at(expr, C):
    """A generic-slot expression at the numeric covariance C (entries exact, so that equal entries,
    i.e. two slots on one field, are seen as such)."""
    n = C.shape[0]
    S = slot_covariance(n)
    return float(expr.xreplace({S[a, b]: sp.Rational(C[a, b]) for a in range(n) for b in range(a, n)}).evalf(30))


def _slot_covariance(fields, F):
    """Covariance of slots placed on the fields (indices into F, the fields' covariance)."""
    return F[np.ix_(fields, fields)]


def _random_fields(m, rng):
    A = rng.normal(size=(m, m + 2))
    C = A @ A.T / (m + 2) * rng.uniform(0.5, 2.0)
    return np.round(C * 2 ** 20) / 2 ** 20   # dyadic: exact as Rationals, still positive definite


FACTOR = {0: lambda u: np.maximum(u, 0.0), 1: lambda u: (u > 0).astype(float)}
# (derivs, field of each slot): the patterns of the committee machine's equations (no g'' here)
PATTERNS = [((0, 0), (0, 1)), ((0, 0), (0, 0)), ((1, 1), (0, 1)), ((1, 0), (0, 1)), ((1, 1, 1), (0, 1, 2)),
            ((1, 0, 0), (0, 1, 2)), ((1, 1, 0), (0, 1, 2)),
            ((1, 0, 1, 0), (0, 1, 0, 1)), ((1, 0, 1, 0), (0, 0, 0, 1)), ((1, 0, 1, 0), (0, 1, 0, 2)),
            ((1, 0, 1, 0), (0, 2, 1, 2)), ((1, 0, 1, 0), (0, 0, 1, 2)), ((1, 0, 1, 0), (0, 0, 1, 1)),
            ((1, 0, 1, 0), (0, 2, 0, 2))]


def test_closed_forms_against_monte_carlo():
    """Each pattern at two random covariances of three fields against 2e6 Gaussian samples (the same
    samples for all): within 4 standard errors; the closed form 3% off is outside them."""
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(2):
        F = _random_fields(3, rng)
        U = np.linalg.cholesky(F) @ rng.normal(size=(3, 2_000_000))
        for derivs, fields in PATTERNS:
            exact = _at(RELU.expectation(derivs), _slot_covariance(fields, F))
            sample = np.prod([FACTOR[d](U[f]) for d, f in zip(derivs, fields)], axis=0)
            mean, se = sample.mean(), sample.std() / np.sqrt(sample.size)
            worst = max(worst, abs(exact - mean) / se)
            assert abs(exact - mean) < GATE * se, (derivs, fields, exact, mean, se)
            assert abs(1.03 * exact - mean) > GATE * se, (derivs, fields, "planted error not seen")
    assert worst > 0.1   # the comparison is live


def test_delta_patterns_against_quadrature():
    """<delta(u_1) g(u_2)> = int p(0, v) max(v, 0) dv by quadrature of the Gaussian density; <delta(u) g(u)> = 0."""
    rng = np.random.default_rng(5)
    for _ in range(3):
        F = _random_fields(2, rng)
        density = stats.multivariate_normal(mean=[0, 0], cov=F)
        quad, _ = integrate.quad(lambda v: density.pdf([0.0, v]) * v, 0, np.inf, epsabs=1e-13, epsrel=1e-12)
        exact = _at(RELU.expectation((2, 0)), F)
        assert exact == pytest.approx(quad, rel=1e-9)
        assert exact * 1.001 != pytest.approx(quad, rel=1e-9)
    assert _at(RELU.expectation((2, 0)), np.full((2, 2), 0.75)) == 0


def test_orthant_probabilities_are_derived_sums_of_arcsines():
    """P_3 from Price's theorem: at equicorrelation 1/2 it is 1/4 (the known value 1/8 + 3 asin(1/2)/(4 pi))."""
    C = np.array([[2.0, 1, 1], [1, 2, 1], [1, 1, 2]])
    assert _at(RELU.expectation((1, 1, 1)), C) == pytest.approx(0.25, rel=1e-15)
    assert RELU.closed_form((1, 1, 1)).has(sp.asin) and not RELU.closed_form((1, 1, 1)).has(sp.Integral)


def _pattern(factors):
    """The closed form of a factor pattern over distinct fields, in slot_covariance's symbols."""
    n = len(factors)
    S, C = expectations._field_covariance(n), slot_covariance(n)
    return expectations._relu_closed_form(factors).xreplace({S[a, b]: C[a, b] for a in range(n) for b in range(a, n)})


T0, T1, T2, D = ("theta", 0), ("theta", 1), ("theta", 2), ("delta", 0)
# Price's theorem, d/dC_ab E[F] = E[d_a d_b F] (a != b) and d/dC_aa E[F] = E[d_a^2 F] / 2, links patterns
# that the derivation reaches by other routes (Stein's lemma, conditioning on delta factors);
# d(u theta) = theta, d theta = delta, d^2(u^2 theta) = 2 theta.  (pattern, (a, b), its derivative, factor)
PRICE = [((T1, T1), (0, 1), (T0, T0), 1), ((T1, T1), (0, 0), (D, T1), sp.Rational(1, 2)),
         ((T0, T1, T1), (1, 2), (T0, T0, T0), 1), ((T0, T1, T1), (0, 1), (D, T0, T1), 1),
         ((T0, T0, T1), (1, 2), (T0, D, T0), 1), ((T0, T0, T2), (2, 2), (T0, T0, T0), 1),
         ((T0, T0, T2), (0, 2), (D, T0, T1), 2), ((T0, T2), (0, 1), (D, T1), 2)]


def test_closed_forms_obey_price_theorem_to_30_digits():
    """Each identity at two random covariances to 1e-28 relative (30-digit evaluation); the same
    comparison sees a 1e-6 relative change."""
    rng = np.random.default_rng(2)
    for pattern, (a, b), derivative, factor in PRICE:
        n = len(pattern)
        C = slot_covariance(n)
        lhs, rhs = sp.diff(_pattern(pattern), C[a, b]), factor * _pattern(derivative)
        for _ in range(2):
            F = _random_fields(n, rng)
            point = {C[i, j]: sp.Rational(F[i, j]) for i in range(n) for j in range(i, n)}
            left, right = lhs.xreplace(point).evalf(40), rhs.xreplace(point).evalf(40)
            assert abs(left - right) <= 1e-28 * abs(right), (pattern, (a, b), left, right)
            assert abs(left - right * (1 + sp.Rational(1, 10 ** 6))) > 1e-28 * abs(right)


def test_four_distinct_fields_are_refused():
    F = _random_fields(4, np.random.default_rng(1))
    with pytest.raises(ExactdynError, match="4-dimensional orthant probability"):
        _at(RELU.expectation((1, 0, 1, 0)), F)
    with pytest.raises(ExactdynError, match="no elementary closed form is known"):
        derive_moment(Structure(RELU, 3, 1, 1))


def test_registry_and_cache():
    assert activation_from_name("relu") == RELU and RELU.cacheable
    system = derive_moment(Structure(RELU, 1, 1, 1))   # the disk cache's format holds it exactly
    assert serialize.decode(json.loads(json.dumps(serialize.encode(system)))) == system
    assert RELU.numeric_g(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert RELU.numeric_dg(np.array([-1.0, 2.0])).tolist() == [0.0, 1.0]


RHS_CASES = [("relu", 1, 1, 2, "one", "1/2", hmc.SAMPLES), ("relu", 2, 1, 2, "sqrt", "1/2", hmc.SAMPLES),
             ("relu", 1, 2, 1, "mean", "1/2", hmc.SAMPLES)]


@pytest.mark.parametrize("case", RHS_CASES, ids=["-".join(map(str, c[:4])) + "-" + c[4] for c in RHS_CASES])
def test_rhs_matches_monte_carlo(case):
    """Every rhs (its O(eta) and O(eta^2) parts) and eps_g, moment and eigenmode bases, against Monte Carlo
    of the one-step SGD increment at a random state (tests/test_hierarchy_mc.py); planted errors of 2%
    (O(eta)) and 5% (O(eta^2)) must leave the gate."""
    structure, tables, stats_ = hmc._mc(case, seed=3)
    for system, prefix in ((derive_moment(structure), {"R": "R", "Q": "Q"}),
                           (derive_mode(structure), {"r": "r", "q": "q"})):
        first, second, eps = hmc._split(system, tables)
        bad = hmc._failures(system, first, second, eps, stats_, prefix)
        assert not bad, "\n".join(bad)
        for sign in (1, -1):
            assert hmc._failures(system, (1 + sign * hmc.PLANT_ETA) * first, second, eps, stats_, prefix)
            assert hmc._failures(system, first, (1 + sign * hmc.PLANT_ETA2) * second, eps, stats_, prefix)


def _relu_eps_g(R, Q, T, v, w):
    """eps_g = <(sum_i v g(x_i) - sum_n w g(y_n))^2> / 2 for g = max(0, x) from the first-order overlaps,
    by the degree-1 arc-cosine kernel <g(u) g(u')> = (sqrt(C_uu C_u'u' - C^2) + C (pi - arccos rho)) / (2 pi)
    (Cho & Saul), written here independently of the derived eps_g."""
    qd, td = np.diagonal(Q, axis1=-2, axis2=-1), np.diagonal(T, axis1=-2, axis2=-1)

    def pair(C, a, b):
        norm = np.sqrt(a[..., :, None] * b[..., None, :])
        rho = np.clip(C / norm, -1, 1)
        return norm * (np.sqrt(1 - rho ** 2) + rho * (np.pi - np.arccos(rho))) / (2 * np.pi)

    total = (v * v * pair(Q, qd, qd).sum((-2, -1)) + w * w * pair(T, td, td).sum((-2, -1))
             - 2 * v * w * pair(R, qd, td).sum((-2, -1)))
    return total / 2


def test_relu_ode_matches_sgd_from_same_initial_overlaps():
    """K = 2, M = 1, L = 2: the ODE from one draw's overlaps predicts the mean eps_g over SGD runs from
    that draw (192 seeds, N = 256: standard errors 0.35-0.5%) within 4 standard errors at every alpha
    (largest |z| 0.7); the same gate rejects a prediction 3% off (|z| >= 5)."""
    K, M = 2, 1
    N, seeds, sigma_J, alpha = 256, 192, "0.5", [0, 1, 2, 4]
    problem = Problem("relu", K, M, power_law(2, 1), "0.5")
    lam, frac = problem.spectrum.floats()
    sim = simulate(problem.structure, lam, frac, 0.5, alpha, N=N, seeds=range(seeds), sigma_J=0.5, init_seed=7)
    lam = np.array(lam)[:, None, None]
    first = lambda x: (x * lam).sum(-3)  # X^(1) = sum_k lambda_k x^k
    eps = _relu_eps_g(first(sim.r), first(sim.q), first(sim.t)[None], 1.0, 1.0)
    ode = solve(problem, InitialState.draw(problem, N, seed=7, sigma_J=sigma_J), alpha)
    assert ode.ok and min(ode.digits) >= 5
    predicted = np.array(ode.floats())
    assert np.allclose(eps[0], predicted[0], rtol=1e-12)  # same overlaps; derived eps_g = the kernel form
    mean, se = eps[1:].mean(1), eps[1:].std(1, ddof=1) / np.sqrt(seeds)
    z = (mean - predicted[1:]) / se
    assert np.all(np.abs(z) < GATE), (alpha, mean, se, predicted)
    for sign in (1, -1):
        planted = (mean - (1 + sign * 0.03) * predicted[1:]) / se
        assert np.all(np.abs(planted) >= GATE), planted


def test_cli_derive_latex_and_refusal(capsys):
    assert main(["derive", "--activation", "relu", "--K", "1", "--M", "1", "--L", "1", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert r"\operatorname{asin}" in tex and r"\max" in tex and "ReluGaussian" not in tex
    assert main(["derive", "--activation", "relu", "--K", "2", "--M", "2", "--L", "1"]) == 2
    err = capsys.readouterr().err
    assert "no elementary closed form is known" in err and len(err.strip().splitlines()) == 1
