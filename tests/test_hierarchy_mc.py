"""Every derived right-hand side against a Monte Carlo estimate of its defining expectation.

A random state is made from actual weight vectors supported on D = L*m coordinates (m per
eigenvalue group), so every covariance is a valid (positive-definite) one and Cayley-Hamilton
holds exactly for it.  The input has N = BULK * D coordinates, BULK * m per group, of which the
weights see only the first m: the fields x^(l) = J Sigma^l xi / sqrt N are those of the D support
coordinates, and the eta^2 factors xi Sigma^l xi / N and xi P_k xi / N are sampled in full, the
support coordinates exactly and the BULK - 1 others per group as the chi-square variable their
sum of squares is.  So the Monte Carlo averages the actual one-step increment
N E[Delta Q] = eta <delta_i x^(l)_k + delta_k x^(l)_i> + eta^2 <delta_i delta_k xi Sigma^l xi / N>
at N = BULK * D, whose distance from the N -> infinity equations is O(1/BULK) = O(1e-6).

Each rhs is split as eta A + eta^2 B (the derived expressions evaluated at eta and 2 eta); the
same 4-standard-error gate that accepts the derived values must reject A or B off by a few percent.
"""
import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

from exactdyn import Structure, derive_mode, derive_moment
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.symbolic.conventions import output_weight
from exactdyn.symbolic.expectations import Erf, Polynomial

SAMPLES = 1_000_000
CHUNK = 250_000
BULK = 10 ** 6
GATE = 4  # standard errors
PLANT_ETA, PLANT_ETA2 = 0.02, 0.05  # relative errors planted in the O(eta) and O(eta^2) parts
ACTS = {
    "linear": (Polynomial((0, 1)), lambda x: x, lambda x: np.ones_like(x)),
    "quadratic": (Polynomial((0, 0, 1)), lambda x: x ** 2, lambda x: 2 * x),
    "cubic": (Polynomial((0, 0, 0, 1)), lambda x: x ** 3, lambda x: 3 * x ** 2),
    "erf": (Erf(), lambda x: erf(x / np.sqrt(2)), lambda x: np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2)),
}
CASES = [  # activation, K, M, L, student/teacher output weights, loss factor, samples
    ("linear", 1, 1, 3, "one", "1/2", SAMPLES), ("linear", 2, 3, 2, "sqrt", "1/2", SAMPLES),
    ("erf", 2, 2, 2, "one", "1/2", SAMPLES), ("erf", 3, 1, 1, "sqrt", "1/2", SAMPLES),
    ("erf", 1, 3, 2, "mean", "1/2", SAMPLES), ("erf", 3, 3, 1, "one", "1/2", SAMPLES),
    # polynomial activations have heavy-tailed integrands: more samples, so that the planted errors show
    ("quadratic", 3, 2, 1, "mean", "1", 10 * SAMPLES), ("quadratic", 2, 2, 2, "mean", "1", 10 * SAMPLES),
    ("cubic", 2, 1, 2, "one", "1/2", 10 * SAMPLES), ("cubic", 1, 1, 1, "sqrt", "1/2", 20 * SAMPLES),
]


def _random_state(K, M, L, rng, m=3):
    lam = np.sort(rng.uniform(0.3, 1.6, L))[::-1]
    diag = np.repeat(lam, m)
    D = L * m
    J = rng.normal(size=(K, D)) * rng.uniform(0.4, 1.0)
    B = rng.normal(size=(M, D))
    # Keep variances moderate so that polynomial moments stay estimable.
    J /= np.sqrt((J ** 2 * diag).sum(1, keepdims=True) / D)[:, :] * rng.uniform(1.0, 1.6)
    B /= np.sqrt((B ** 2 * diag).sum(1, keepdims=True) / D)
    return lam, diag, J, B, D, m


def _group_overlaps(lam, J, B, D, m):
    L = len(lam)
    sl = [slice(k * m, (k + 1) * m) for k in range(L)]
    r = [J[:, s] @ B[:, s].T / D for s in sl]
    q = [J[:, s] @ J[:, s].T / D for s in sl]
    t = [B[:, s] @ B[:, s].T / D for s in sl]
    return r, q, t


def _fields(xi, W):
    """xi W^T for samples xi (rows); einsum, since a threaded BLAS is slow on these thin products."""
    return np.einsum("cd,kd->ck", xi, W)


def _mc(case, seed):
    name, K, M, L, conv, loss, samples = case
    act, g, dg = ACTS[name]
    c = float(eval_fraction(loss))
    rng = np.random.default_rng(seed)
    lam, diag, J, B, D, m = _random_state(K, M, L, rng)
    v = float(output_weight(conv, K))
    w = float(output_weight(conv, M))
    eta = 0.7
    n_out = {}  # accumulators: moment basis (per order l) and mode basis (per group k)

    def add(key, values):
        s, s2 = n_out.get(key, (0.0, 0.0))
        n_out[key] = (s + values.sum(), s2 + (values ** 2).sum())

    groups = [np.arange(k * m, (k + 1) * m) for k in range(L)]
    N = BULK * D
    for _ in range(samples // CHUNK):
        xi = rng.normal(size=(CHUNK, D)) * np.sqrt(diag)  # the support coordinates
        bulk = rng.chisquare((BULK - 1) * m, size=(CHUNK, L))  # sum of z^2 over each group's other coordinates
        x = _fields(xi, J) / np.sqrt(D)  # = J xi / sqrt(N) with the weights scaled to O(1) overlaps at N
        y = _fields(xi, B) / np.sqrt(D)
        err = w * g(y).sum(1) - v * g(x).sum(1)
        delta = 2 * c * v * dg(x) * err[:, None]
        for l in range(1, L + 1):
            xl = _fields(xi * diag ** l, J) / np.sqrt(D)
            yl = _fields(xi * diag ** l, B) / np.sqrt(D)
            square = ((xi * xi * diag ** l).sum(1) + (bulk * lam ** (l + 1)).sum(1)) / N  # xi Sigma^l xi / N
            for i in range(K):
                for n in range(M):
                    add(("R", l, i, n, 1), eta * delta[:, i] * yl[:, n])
                for k in range(i, K):
                    add(("Q", l, i, k, 1), eta * (delta[:, i] * xl[:, k] + delta[:, k] * xl[:, i]))
                    add(("Q", l, i, k, 2), eta ** 2 * square * delta[:, i] * delta[:, k])
        for gk, idx in enumerate(groups):
            xk = _fields(xi[:, idx], J[:, idx]) / np.sqrt(D)
            yk = _fields(xi[:, idx], B[:, idx]) / np.sqrt(D)
            square = ((xi[:, idx] ** 2).sum(1) + lam[gk] * bulk[:, gk]) / N  # xi P_k xi / N
            for i in range(K):
                for n in range(M):
                    add(("r", gk + 1, i, n, 1), eta * delta[:, i] * yk[:, n])
                for k in range(i, K):
                    add(("q", gk + 1, i, k, 1), eta * (delta[:, i] * xk[:, k] + delta[:, k] * xk[:, i]))
                    add(("q", gk + 1, i, k, 2), eta ** 2 * square * delta[:, i] * delta[:, k])
        add(("eps",), c * err ** 2)
    stats = {key: (s / samples, np.sqrt(max(s2 / samples - (s / samples) ** 2, 0) / samples))
             for key, (s, s2) in n_out.items()}
    r, q, t = _group_overlaps(lam, J, B, D, m)
    coeffs = np.poly(lam)[::-1][:L]  # c_0..c_{L-1} of prod (z - lam)
    tables = [overlap_table(list(lam), [1 / L] * L, r, q, t, e, list(coeffs)) for e in (eta, 2 * eta)]
    structure = Structure(act, K, M, L, conv, conv, eval_fraction(loss))
    return structure, tables, stats


def eval_fraction(text):
    p, _, q = text.partition("/")
    return sp.Rational(int(p), int(q or 1))


def _evaluator(system):
    """table -> (rhs values, eps_g) of the derived system, by sympy's lambdify in float64 (the
    intermediates are handed over as common subexpressions, each computed once)."""
    def with_intermediates(exprs):
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations=None)
        return list(system.intermediates) + replacements, reduced

    f = sp.lambdify([list(system.states), list(system.params)], [*system.rhs, system.eps_g], modules="math",
                    cse=with_intermediates)

    def evaluate(table):
        values = f(*assign(system, table))
        return np.array(values[:-1], float), float(values[-1])
    return evaluate


def _split(system, tables):
    """eta A, eta^2 B per component (rhs = eta A + eta^2 B is a polynomial of degree 2 in eta), eps_g."""
    evaluate = _evaluator(system)
    (one, eps), (two, _) = evaluate(tables[0]), evaluate(tables[1])
    eta2 = (two - 2 * one) / 2
    return one - eta2, eta2, eps


def _failures(system, first, second, eps, stats, prefix):
    """The components whose derived O(eta) or O(eta^2) part, or eps_g, leave the Monte Carlo gate."""
    bad = []
    for (kind, order, a, b), *parts in zip(system.layout, first, second):
        for part, value in enumerate(parts, 1):
            mean, se = stats.get((prefix[kind], order, a - 1, b - 1, part), (0.0, 0.0))  # R, r: no eta^2 part
            if abs(value - mean) > GATE * se + 1e-12:
                bad.append(f"d{kind}{order}_{a}_{b}, eta^{part} part: derived {value:.6g}, MC {mean:.6g} +- {se:.2g}")
    mean, se = stats[("eps",)]
    if abs(eps - mean) > GATE * se + 1e-12:
        bad.append(f"eps_g: derived {eps:.6g}, MC {mean:.6g} +- {se:.2g}")
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c[:4])) + "-" + c[4] for c in CASES])
def test_rhs_matches_monte_carlo(case):
    for seed in (1, 2):
        structure, tables, stats = _mc(case, seed)
        for system, prefix in ((derive_moment(structure), {"R": "R", "Q": "Q"}),
                               (derive_mode(structure), {"r": "r", "q": "q"})):
            first, second, eps = _split(system, tables)
            bad = _failures(system, first, second, eps, stats, prefix)
            assert not bad, "\n".join(bad)
            for sign in (1, -1):  # planted errors: the O(eta) part, then the eta^2 part, a few percent off
                assert _failures(system, (1 + sign * PLANT_ETA) * first, second, eps, stats, prefix)
                assert _failures(system, first, (1 + sign * PLANT_ETA2) * second, eps, stats, prefix)
