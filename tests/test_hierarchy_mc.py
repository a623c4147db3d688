"""Every derived right-hand side against a Monte Carlo estimate of its defining expectation.

A random state is made from actual weight vectors in D = L*m dimensions, so every covariance
is a valid (positive-definite) one and Cayley-Hamilton holds exactly for it.  The fields
x^(l) = J Sigma^l xi / sqrt D are sampled, the SGD increment is averaged over 10^6 inputs.
"""
import numpy as np
import pytest
from scipy.special import erf

from exactdyn import Structure, derive_mode, derive_moment
from exactdyn.numeric.compiled import compile_system
from exactdyn.symbolic.conventions import output_weight
from exactdyn.symbolic.expectations import Erf, Polynomial
from exactdyn.numeric.overlaps import assign, overlap_table

SAMPLES = 1_000_000
CHUNK = 250_000
ACTS = {
    "linear": (Polynomial((0, 1)), lambda x: x, lambda x: np.ones_like(x)),
    "quadratic": (Polynomial((0, 0, 1)), lambda x: x ** 2, lambda x: 2 * x),
    "cubic": (Polynomial((0, 0, 0, 1)), lambda x: x ** 3, lambda x: 3 * x ** 2),
    "erf": (Erf(), lambda x: erf(x / np.sqrt(2)), lambda x: np.sqrt(2 / np.pi) * np.exp(-x ** 2 / 2)),
}
CASES = [  # activation, K, M, L, student/teacher output weights, loss factor
    ("linear", 1, 1, 3, "one", "1/2"), ("linear", 2, 3, 2, "sqrt", "1/2"),
    ("erf", 2, 2, 2, "one", "1/2"), ("erf", 3, 1, 1, "sqrt", "1/2"), ("erf", 1, 3, 2, "mean", "1/2"),
    ("erf", 3, 3, 1, "one", "1/2"),
    ("quadratic", 3, 2, 1, "mean", "1"), ("quadratic", 2, 2, 2, "mean", "1"),
    ("cubic", 2, 1, 2, "one", "1/2"), ("cubic", 1, 1, 1, "sqrt", "1/2"),
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


def _mc(case, seed):
    name, K, M, L, conv, loss = case
    act, g, dg = ACTS[name]
    c = float(eval_fraction(loss))
    rng = np.random.default_rng(seed)
    lam, diag, J, B, D, m = _random_state(K, M, L, rng)
    v = float(output_weight(conv, K))
    w = float(output_weight(conv, M))
    eta = 0.7
    tau = {k: np.mean(diag ** k) for k in range(1, L + 2)}
    # accumulators: moment basis (per order l) and mode basis (per group k)
    n_out = {}

    def add(key, samples):
        s, s2 = n_out.get(key, (0.0, 0.0))
        n_out[key] = (s + samples.sum(), s2 + (samples ** 2).sum())

    groups = [np.arange(k * m, (k + 1) * m) for k in range(L)]
    for _ in range(SAMPLES // CHUNK):
        xi = rng.normal(size=(CHUNK, D)) * np.sqrt(diag)
        x = xi @ J.T / np.sqrt(D)
        y = xi @ B.T / np.sqrt(D)
        err = g(y).dot(np.full(M, w)) - g(x).dot(np.full(K, v))
        delta = 2 * c * v * dg(x) * err[:, None]
        for l in range(1, L + 1):
            xl = (xi * diag ** l) @ J.T / np.sqrt(D)
            yl = (xi * diag ** l) @ B.T / np.sqrt(D)
            for i in range(K):
                for n in range(M):
                    add(("R", l, i, n), eta * delta[:, i] * yl[:, n])
                for k in range(i, K):
                    add(("Q", l, i, k), eta * (delta[:, i] * xl[:, k] + delta[:, k] * xl[:, i])
                        + eta ** 2 * tau[l + 1] * delta[:, i] * delta[:, k])
        for gk, idx in enumerate(groups):
            xk = xi[:, idx] @ J[:, idx].T / np.sqrt(D)
            yk = xi[:, idx] @ B[:, idx].T / np.sqrt(D)
            kappa = lam[gk] * len(idx) / D
            for i in range(K):
                for n in range(M):
                    add(("r", gk + 1, i, n), eta * delta[:, i] * yk[:, n])
                for k in range(i, K):
                    add(("q", gk + 1, i, k), eta * (delta[:, i] * xk[:, k] + delta[:, k] * xk[:, i])
                        + eta ** 2 * kappa * delta[:, i] * delta[:, k])
        add(("eps",), c * err ** 2)
    stats = {key: (s / SAMPLES, np.sqrt(max(s2 / SAMPLES - (s / SAMPLES) ** 2, 0) / SAMPLES))
             for key, (s, s2) in n_out.items()}
    r, q, t = _group_overlaps(lam, J, B, D, m)
    coeffs = np.poly(lam)[::-1][:L]  # c_0..c_{L-1} of prod (z - lam)
    table = overlap_table(list(lam), [1 / L] * L, r, q, t, eta, list(coeffs))
    structure = Structure(act, K, M, L, conv, conv, eval_fraction(loss))
    return structure, table, stats


def eval_fraction(text):
    import sympy as sp
    p, _, q = text.partition("/")
    return sp.Rational(int(p), int(q or 1))


def _check(system, table, stats, prefix_map):
    f = compile_system(system)
    state, params = assign(system, table)
    rhs = f.rhs(state, params)
    bad = []
    for (kind, order, a, b), value in zip(system.layout, rhs):
        mean, se = stats[(prefix_map[kind], order, a - 1, b - 1)]
        if abs(value - mean) > 4 * se + 1e-12:
            bad.append(f"d{kind}{order}_{a}_{b}: derived {value:.6g}, MC {mean:.6g} +- {se:.2g}")
    mean, se = stats[("eps",)]
    eps = f.eps_g(state, params)
    if abs(eps - mean) > 4 * se + 1e-12:
        bad.append(f"eps_g: derived {eps:.6g}, MC {mean:.6g} +- {se:.2g}")
    assert not bad, "\n".join(bad)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c[:4])) + "-" + c[4] for c in CASES])
def test_rhs_matches_monte_carlo(case):
    for seed in (1, 2):
        structure, table, stats = _mc(case, seed)
        _check(derive_moment(structure), table, stats, {"R": "R", "Q": "Q"})
        _check(derive_mode(structure), table, stats, {"r": "r", "q": "q"})
