"""The derived Gaussian expectations against quadrature (erf) and against Monte Carlo (polynomials)."""
import numpy as np
import pytest
from scipy.special import erf

from exactdyn.symbolic.expectations import Erf, Polynomial, isserlis, slot_covariance

import sympy as sp


def _random_cov(n, rng):
    A = rng.normal(size=(n, n + 2))
    C = A @ A.T / (n + 2) * rng.uniform(0.3, 2.0)
    return C


def _evaluate(expr, C):
    n = C.shape[0]
    S = slot_covariance(n)
    sub = {S[a, b]: C[a, b] for a in range(n) for b in range(a, n)}
    return float(expr.xreplace(sub).evalf(30))


def _hermite_expectation(f, C, points=40):
    """E[f(u)] for u ~ N(0, C) by a tensor Gauss-Hermite rule on u = chol(C) z."""
    n = C.shape[0]
    z, w = np.polynomial.hermite_e.hermegauss(points)
    w = w / w.sum()
    grids = np.meshgrid(*([z] * n), indexing="ij")
    Z = np.stack([g.ravel() for g in grids])
    W = np.prod(np.stack(np.meshgrid(*([w] * n), indexing="ij")).reshape(n, -1), axis=0)
    U = np.linalg.cholesky(C) @ Z
    return float(np.sum(W * f(U)))


G = {0: lambda x: erf(x / np.sqrt(2)),
     1: lambda x: np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2),
     2: lambda x: -x * np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2),
     3: lambda x: (x ** 2 - 1) * np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2)}


@pytest.mark.parametrize("derivs", [(0, 0), (1, 1), (2, 0), (1, 0), (3, 1), (1, 1, 0, 0), (1, 1, 1, 1), (2, 1, 0)])
def test_erf_closed_forms_against_quadrature(derivs):
    rng = np.random.default_rng(sum(derivs) + 10 * len(derivs))
    expr = Erf().expectation(derivs)
    points = 60 if len(derivs) <= 2 else 24
    for _ in range(3):
        C = _random_cov(len(derivs), rng)
        exact = _evaluate(expr, C)
        quad = _hermite_expectation(lambda U: np.prod([G[d](U[a]) for a, d in enumerate(derivs)], axis=0), C, points)
        assert exact == pytest.approx(quad, abs=2e-6, rel=1e-5), (derivs, C)


def test_erf_same_field_in_two_slots():
    """A degenerate slot covariance (two slots on one field) is a limit of the closed forms."""
    c = 0.8
    C = np.array([[c, c], [c, c]])
    assert _evaluate(Erf().expectation((1, 1)), C) == pytest.approx(2 / np.pi / np.sqrt(1 + 2 * c), rel=1e-14)
    quad = _hermite_expectation(lambda U: G[2](U[0]) * G[0](U[0]), np.array([[c]]), 80)
    assert _evaluate(Erf().expectation((2, 0)), C) == pytest.approx(quad, rel=1e-8)


def test_isserlis_matches_pairing_counts():
    C = slot_covariance(4)
    assert isserlis((4, 0, 0, 0), C) == 3 * C[0, 0] ** 2
    assert isserlis((1, 1, 1, 1), C) == sp.expand(C[0, 1] * C[2, 3] + C[0, 2] * C[1, 3] + C[0, 3] * C[1, 2])
    assert isserlis((3, 0, 0, 0), C) == 0
    assert isserlis((6, 0, 0, 0), C) == 15 * C[0, 0] ** 3  # (6-1)!! pairings


@pytest.mark.parametrize("coeffs,derivs", [((0, 0, 0, 1), (1, 1, 0, 0)), ((1, -2, 0, 1), (0, 0)),
                                           ((0, 0, 1), (2, 0, 1)), (("1/2", 0, 1, 1, "-1/3"), (0, 1))])
def test_polynomial_expectations_against_monte_carlo(coeffs, derivs):
    rng = np.random.default_rng(7)
    act = Polynomial(coeffs)
    C = _random_cov(len(derivs), rng) * 0.5
    exact = _evaluate(act.expectation(derivs), C)
    poly = np.polynomial.Polynomial([float(sp.Rational(str(c))) for c in coeffs])
    U = np.linalg.cholesky(C) @ rng.normal(size=(len(derivs), 2_000_000))
    sample = np.prod([poly.deriv(d)(U[a]) for a, d in enumerate(derivs)], axis=0)
    se = sample.std() / np.sqrt(sample.size)
    assert abs(exact - sample.mean()) < 4 * se
    # and exactly against Gauss-Hermite, which integrates polynomials without error
    quad = _hermite_expectation(lambda V: np.prod([poly.deriv(d)(V[a]) for a, d in enumerate(derivs)], axis=0), C, 12)
    assert exact == pytest.approx(quad, rel=1e-9, abs=1e-12)
