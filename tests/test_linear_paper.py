"""The linear-network results of "Analyzing Neural Scaling Laws in Two-Layer Networks with Power-Law Data
Spectra" as notebooks/linear_paper.ipynb states them, each against an independent computation: float64
eigendecompositions of the mode matrix (no certified solver), a float64 linear solve, the overlap chain."""
import csv
from fractions import Fraction
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest

from exactdyn import Problem, power_law
from exactdyn.numeric.linear import small_eta, solve_linear

DATA = Path(__file__).resolve().parent.parent / "notebooks" / "data"


def modes(lam, rho, eta, d0):
    """float64 rates and coefficients of eps_g = (1/2) sum_j c_j exp(rate_j alpha), from eigh of the mode matrix
    -2 eta diag(lam) + eta^2 (lam rho) lam^T symmetrised by diag(sqrt(rho))."""
    lam, rho, d0 = (np.asarray(x, float) for x in (lam, rho, d0))
    z = lam * np.sqrt(rho)
    w, Y = np.linalg.eigh(-2 * eta * np.diag(lam) + eta ** 2 * np.outer(z, z))
    return w, (z @ Y) * (Y.T @ (d0 / np.sqrt(rho)))


def float_slope(w, c, alpha):
    """d ln eps_g / d ln alpha (all c_j > 0 here, so the sums do not cancel)."""
    e = c * np.exp(w * alpha - (w * alpha).max())
    return alpha * np.sum(w * e) / np.sum(e)


def upper_edge(w, c, target, lo, hi):
    """The alpha in (lo, hi) where the local exponent falls through target, by bisection in ln alpha."""
    assert float_slope(w, c, lo) > target > float_slope(w, c, hi)
    lo, hi = math.log(lo), math.log(hi)
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float_slope(w, c, math.exp(mid)) > target else (lo, mid)
    return math.exp(lo)


def t_delta(s, delta):
    """Solves t^s e^-t / (s Gamma(s, t)) = delta: where the integral form's local exponent leaves -s by delta."""
    with mpmath.workdps(30):
        f = lambda t: t ** s * mpmath.exp(-t) / (s * mpmath.gammainc(s, t)) - delta
        return float(mpmath.findroot(f, (mpmath.mpf("1e-12"), mpmath.mpf(10)), solver="anderson"))


def edge_rows():
    with open(DATA / "linear_window_edge.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("beta", ["1", "2"])
def test_window_edge_csv_recomputed_by_float64_eigh(beta):
    """Two upper edges of the committed CSV (certified exponent, bisected) recomputed from float64 eigh."""
    row = next(r for r in edge_rows() if r["beta"] == beta and r["L"] == "64" and r["eta"] == "0.05")
    lam, rho = power_law(64, int(beta)).floats()
    w, c = modes(lam, rho, 0.05, rho)
    s0 = -int(beta) / (1 + int(beta))
    for delta in (0.05, 0.10):
        stored = float(row[f"alpha_upper_{round(100 * delta)}"])
        again = upper_edge(w, c, s0 * (1 + delta), stored / 2, stored * 2)
        assert again == pytest.approx(stored, rel=1e-4)


@pytest.mark.parametrize("beta, delta", [(1, 0.10), (2, 0.05)])
def test_window_upper_edge_law(beta, delta):
    """The exponent leaves -beta/(1+beta) by delta at t_delta(beta) L^(1+beta)/(2 eta lambda_+), far below the
    papers' edge L^(1+beta)/(2 eta lambda_+): float64 eigh at L = 256, against the law derived from the integral form."""
    L, eta = 256, 0.05
    lam, rho = power_law(L, beta).floats()
    w, c = modes(lam, rho, eta, rho)
    edge = L ** (1 + beta) / (2 * eta * lam[0])
    t = t_delta(beta / (1 + beta), delta)
    assert t < 0.03
    measured = upper_edge(w, c, -beta / (1 + beta) * (1 + delta), t * edge / 4, t * edge * 4)
    assert measured / edge == pytest.approx(t, rel=0.02)


def test_shifted_spectrum_against_eigh_and_its_laws():
    """Figs. 10-11: the certified u_j are the mode matrix's eigenvalues (float64 eigh), interlace the lambda_j,
    fall as eta grows, and follow the first-order shift law at small eta."""
    L = 32
    spec = power_law(L, 1)
    lam, rho = map(np.array, spec.floats())
    previous = None
    for eta in ("0.1", "0.5", "1.5"):
        e = float(eta)
        u = [-r / (2 * e) for r in solve_linear(spec, eta, [1], digits=15).rates]
        u_mid = np.array([float(x.mid()) for x in u])
        w, _ = modes(lam, rho, e, rho)
        assert np.all(np.abs(u_mid - np.sort(-w / (2 * e))[::-1]) < 1e-12 * lam[0])
        assert all(u[k] < lam[k] for k in range(L)) and all(u[k] > lam[k + 1] for k in range(L - 1))
        if previous is not None:
            assert all(a > b for a, b in zip(previous, u))
        previous = u
        if eta == "0.1":
            S = np.array([sum(rho[k] * lam[k] ** 2 / (lam[k] - lam[j]) for k in range(L) if k != j) for j in range(L)])
            first_order = e / 2 * rho * lam ** 2 / (1 - e / 2 * S)
            assert np.all(np.abs((lam - u_mid) / first_order - 1) < 0.01)


def test_exact_above_small_eta_by_the_slaving_factor():
    """Fig. 2 left at eta = 1: the certified exact curve lies above the small-eta form, equals the float64 eigh
    curve, and in the window's middle exceeds the small-eta form by 1/(1 - eta/2) within 5%."""
    L, eta = 64, 1.0
    spec = power_law(L, 1)
    lam, rho = spec.floats()
    alpha = [0.2, 1, 5]  # 10/(2 eta lambda_+) = 0.13 ... L^2 / (20 eta lambda_+) = 5.2
    exact = solve_linear(spec, "1", alpha, digits=15).eps_g
    small = small_eta(spec, "1", alpha)
    w, c = modes(lam, rho, eta, rho)
    for a, x, s in zip(alpha, exact, small):
        assert (x - s).lower() > 0
        assert 0.5 * np.sum(c * np.exp(w * a)) == pytest.approx(float(x.mid()), rel=1e-9)
        assert float((x / s).mid()) * (1 - eta / 2) == pytest.approx(1, abs=0.05)


@pytest.mark.parametrize("beta", ["1/2", "2"])
def test_feature_scaling_limit_against_a_float64_fixed_point(beta):
    """The alpha -> infinity error with the first n groups trainable: solve_linear's closed form against the
    fixed point of the full linear system solved by numpy; the frozen groups keep their initial overlaps."""
    L, n, eta = 128, 8, 0.5
    b = Fraction(beta)
    spec = power_law(L, b) if b.denominator == 1 else power_law(L, b, prec=256)
    lam, rho = map(np.array, spec.floats())
    limit = float(solve_linear(spec, "0.5", [0], trainable=n, digits=10).plateau.mid())
    F = np.sum(lam[n:] * rho[n:])  # the frozen groups' signal, d^k(0) = rho_k
    M = -2 * eta * np.diag(lam[:n]) + eta ** 2 * np.outer(lam[:n] * rho[:n], lam[:n])
    d_star = np.linalg.solve(M, -eta ** 2 * lam[:n] * rho[:n] * F)
    assert limit == pytest.approx(0.5 * (lam[:n] @ d_star + F), rel=1e-10)


def test_sgd_csv_reproduced_by_the_overlap_chain():
    """Two seeds of the committed SGD run at eta = 0.5 recomputed to alpha = 1 (the chain is deterministic per
    seed, whatever the thread count): the CSV the notebook compares with the exact curve comes from this simulator."""
    from exactdyn.simulate.chain import simulate_groups

    table = np.loadtxt(DATA / "linear_sgd_eta0.5.csv", delimiter=",", skiprows=1)
    rows = [i for i, a in enumerate(table[:, 0]) if a <= 1]
    problem = Problem("linear", 1, 1, power_law(16, 1), "0.5")
    lam, frac = problem.spectrum.floats()
    sim = simulate_groups(problem.structure, lam, frac, 0.5, list(table[rows, 0]), N=8192, seeds=range(2))
    d = sim.q[..., 0, 0] - 2 * sim.r[..., 0, 0] + sim.t[None, ..., 0, 0]
    eps = 0.5 * (d * np.array(lam)).sum(-1)
    np.testing.assert_allclose(eps, table[rows][:, 1:3], rtol=1e-9)
