"""The per-group overlap chain (exactdyn.simulate.chain): its law against the N-dimensional SGD, and its
mean against the ODE through plateau and escape."""
import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from exactdyn import ExactdynError, power_law
from exactdyn.problem import InitialState, Problem
from exactdyn.simulate import chain
from exactdyn.simulate.sgd import group_sizes, simulate, simulate_curve
from exactdyn.solve import solve
from exactdyn.symbolic.conventions import output_weight

DATA = Path(__file__).resolve().parents[1] / "notebooks" / "data"
FALSE_ALARM = 0.01  # family-wise, two-sided, Bonferroni over every compared statistic


def _erf_eps_g(R, Q, T, v, w):
    """eps_g of first-order overlaps for g = erf(x / sqrt 2), from Saad & Solla's closed form (written here)."""
    qd, td = np.diagonal(Q, axis1=-2, axis2=-1), np.diagonal(T, axis1=-2, axis2=-1)
    pair = lambda C, a, b: 2 / np.pi * np.arcsin(C / np.sqrt((1 + a[..., :, None]) * (1 + b[..., None, :])))
    return (v * v * pair(Q, qd, qd).sum((-2, -1)) + w * w * pair(T, td, td).sum((-2, -1))
            - 2 * v * w * pair(R, qd, td).sum((-2, -1))) / 2


def _statistics(r, q, t, lam, v, w):
    """Per seed: r^l_00, q^l_00, q^l_01 of every group and eps_g (columns), at each alpha (rows of the first axis)."""
    lam = np.asarray(lam)[:, None, None]
    eps = _erf_eps_g((r * lam).sum(-3), (q * lam).sum(-3), (t * lam).sum(-3), v, w)
    return np.concatenate([r[..., 0, 0], q[..., 0, 0], q[..., 0, 1], eps[..., None]], -1)


def _two_sample_z(a, b):
    """z of the difference of means and of variances of samples a, b (seeds on axis 0), the variance's
    standard error from the fourth central moment (asymptotically normal)."""
    n, m = len(a), len(b)
    z_mean = (a.mean(0) - b.mean(0)) / np.sqrt(a.var(0, ddof=1) / n + b.var(0, ddof=1) / m)
    se2 = lambda x: (((x - x.mean(0)) ** 4).mean(0) - x.var(0) ** 2) / len(x)
    z_var = (a.var(0, ddof=1) - b.var(0, ddof=1)) / np.sqrt(se2(a) + se2(b))
    return np.concatenate([z_mean.ravel(), z_var.ravel()])


def _chain_runs(structure, lam, frac, eta, alpha, N, seeds, C0, sizes):
    """The chain kernel from C0 with the given group sizes (the true ones, or a planted error's)."""
    K = structure.K
    records = np.array([round(a * N) for a in alpha], dtype=np.int64)
    v = float(output_weight(structure.output_weights, K))
    w = float(output_weight(structure.teacher_output_weights, structure.M))
    outs = []
    for s in seeds:
        out, done = chain.run_groups(C0, K, np.asarray(lam), np.asarray(sizes, float), records, eta, N, v, w,
                                     float(structure.loss_factor), np.zeros(1), True,
                                     np.random.default_rng(s))
        assert done == records[-1]
        outs.append(out)
    out = np.stack(outs, 1)
    return out[..., :K, K:], out[..., :K, :K]


def test_chain_law_matches_n_dimensional_sgd():
    """erf K = M = 2, L = 3, N = 96 (32 directions per group), eta = 0.5, every seed from one draw: 240
    seeds of each method.  Means and variances of r^l_00, q^l_00, q^l_01 and eps_g at alpha = 1 and 3 agree
    (a Bonferroni gate at 1% family-wise false alarm); the chain with its chi^2 term shrunk to one degree of
    freedom (a planted error: the eta^2 part of the q update loses most of |xi_l|^2) fails the same gate."""
    L, N, eta, alpha, seeds = 3, 96, 0.5, [1.0, 3.0], 240
    problem = Problem("erf", 2, 2, power_law(L, 1), "1/2")
    lam, frac = problem.spectrum.floats()
    s = problem.structure
    full = [simulate(s, lam, frac, eta, alpha, N=N, seeds=range(b, b + 60), sigma_J=0.5, init_seed=7)
            for b in range(0, seeds, 60)]
    r_full = np.concatenate([x.r for x in full], 1)
    q_full = np.concatenate([x.q for x in full], 1)
    t = full[0].t[0]
    sim = chain.simulate_groups(s, lam, frac, eta, alpha, N=N, seeds=range(10_000, 10_000 + seeds), sigma_J=0.5,
                                init_seed=7)
    assert np.allclose(sim.t, full[0].t[:1], rtol=0, atol=1e-14)  # the same draw of the weights
    v = w = 1.0
    a = _statistics(r_full, q_full, t, lam, v, w).swapaxes(0, 1)
    b = _statistics(sim.r, sim.q, t, lam, v, w).swapaxes(0, 1)
    z = _two_sample_z(a, b)
    gate = norm.ppf(1 - FALSE_ALARM / (2 * z.size))
    print(f"gate {gate:.2f}, largest |z| {np.abs(z).max():.2f}")
    assert np.all(np.abs(z) < gate), (gate, z)
    # planted error, run by the same kernel: chi^2 with one degree of freedom instead of N_l - rank
    C0 = chain._drawn_grams(s, group_sizes(frac, N), N, 0.5, 7)
    r_bad, q_bad = _chain_runs(s, lam, frac, eta, alpha, N, range(20_000, 20_000 + seeds), C0,
                               [s.K + s.M + 1] * L)
    bad = _statistics(r_bad, q_bad, t, lam, v, w).swapaxes(0, 1)
    planted = np.abs(_two_sample_z(a, bad)).max()
    print(f"planted error: largest |z| {planted:.1f}")
    assert planted > 2 * gate


def test_chain_law_linear_network_from_zero_student():
    """g(x) = x, K = M = 1, L = 2, N = 64, J = 0 at the start (every group's Gram matrix singular, so the
    chain's semidefinite branch and its rank-dependent chi^2 run), eta = 0.5: 240 seeds of each method,
    means and variances of r^l, q^l and eps_g at alpha = 0.5 and 2 within the 1% family-wise gate."""
    L, N, eta, alpha, seeds = 2, 64, 0.5, [0.5, 2.0], 240
    problem = Problem("linear", 1, 1, power_law(L, 1), "1/2")
    lam, frac = problem.spectrum.floats()
    s = problem.structure
    full = [simulate(s, lam, frac, eta, alpha, N=N, seeds=range(b, b + 80), init_seed=3) for b in range(0, seeds, 80)]
    sim = chain.simulate_groups(s, lam, frac, eta, alpha, N=N, seeds=range(10_000, 10_000 + seeds), init_seed=3)
    assert np.all(sim.q[0] > 0) and np.allclose(sim.t, full[0].t[:1], rtol=0, atol=1e-14)

    def stats(r, q, t):
        eps = (np.asarray(lam) * (q - 2 * r + t)[..., 0, 0]).sum(-1) / 2  # eps_g = (1/2) sum_l lambda_l d^l
        return np.concatenate([r[..., 0, 0], q[..., 0, 0], eps[..., None]], -1).swapaxes(0, 1)

    a = stats(np.concatenate([x.r for x in full], 1), np.concatenate([x.q for x in full], 1), full[0].t[0])
    z = _two_sample_z(a, stats(sim.r, sim.q, full[0].t[0]))
    gate = norm.ppf(1 - FALSE_ALARM / (2 * z.size))
    print(f"gate {gate:.2f}, largest |z| {np.abs(z).max():.2f}")
    assert np.all(np.abs(z) < gate), (gate, z)


def test_chain_mean_follows_the_ode_through_plateau_and_escape():
    """erf K = M = 2, L = 4, eta = 1/2, N = 4096, sigma_J = 1/100, 16 data seeds from one weight draw: the
    plateau (eps_g ~ 0.0144 from alpha ~ 20 to ~ 120), the escape and the decay after it.  The ODE from the
    draw's overlaps is the seeds' mean within the gate (Student's t, 15 degrees of freedom, 1% family-wise
    over the 6 points) at every alpha > 0; a prediction 3% off fails it.  This is the setting of
    bench/sgd_plateau_runs.py at L = 4: its committed CSVs (notebooks/erf_sgd.ipynb reads them) must hold
    the same numbers for seeds 0-7 and the ODE."""
    L, N, S, alpha = 4, 4096, 16, [0, 20, 60, 100, 140, 180, 240]
    problem = Problem("erf", 2, 2, power_law(L, 1), "1/2")
    sgd = simulate_curve(problem, alpha, N=N, seeds=range(S), sigma_J="1/100", init_seed=1)  # auto: the chain
    ode = solve(problem, InitialState.draw(problem, N, seed=1, sigma_J="1/100"), alpha)
    assert ode.ok and min(ode.digits) >= 5
    predicted = np.array(ode.floats())
    assert abs(sgd.mean[0] / predicted[0] - 1) < 1e-9  # the same overlaps at alpha = 0
    assert sgd.mean[2] > 0.9 * sgd.mean[1] and sgd.mean[-1] < 0.2 * sgd.mean[2]  # a plateau, then the escape
    gate = student_t.ppf(1 - FALSE_ALARM / (2 * (len(alpha) - 1)), S - 1)
    z = (sgd.mean[1:] - predicted[1:]) / sgd.stderr[1:]
    print(f"gate {gate:.2f}; SGD - ODE in standard errors: {np.round(z, 2)}")
    assert np.all(np.abs(z) < gate), z
    for sign in (1, -1):
        assert np.max(np.abs((sgd.mean[1:] - (1 + sign * 0.03) * predicted[1:]) / sgd.stderr[1:])) >= gate
    with open(DATA / "erf_sgd_L4.csv", newline="") as f:
        stored = {(int(r["seed"]), float(r["alpha"])): float(r["eps_g"]) for r in csv.DictReader(f)}
    for s in range(8):
        assert np.allclose([stored[s, a] for a in alpha], sgd.eps_g[:, s], rtol=1e-9, atol=0)
    with open(DATA / "erf_ode_L4.csv", newline="") as f:
        stored = {float(r["alpha"]): (float(r["eps_g"]), int(r["digits"])) for r in csv.DictReader(f)}
    for a, e in zip(alpha, predicted):
        assert abs(stored[a][0] / e - 1) <= 10.0 ** -min(stored[a][1], min(ode.digits))


def test_chain_refuses_what_it_cannot_run():
    s = Problem("erf", 2, 2, power_law(4, 1), "1/2").structure
    lam, frac = power_law(4, 1).floats()
    with pytest.raises(ExactdynError, match="more than K"):
        chain.simulate_groups(s, lam, frac, 0.5, [0, 1], N=16, seeds=[0])
    with pytest.raises(ExactdynError, match="initial overlaps"):
        chain.simulate_groups(s, lam, frac, 0.5, [0, 1], N=64, seeds=[0], initial=([[0]], [[1]], [[1]]))
    bad = (np.zeros((4, 2, 2)), -np.ones((4, 2, 2)) * np.eye(2), np.ones((4, 2, 2)) * np.eye(2))
    with pytest.raises(ExactdynError, match="semidefinite"):
        chain.simulate_groups(s, lam, frac, 0.5, [0, 1], N=64, seeds=[0], initial=bad)
    linear = Problem("linear", 1, 1, power_law(4, 1), "1/2").structure
    with pytest.raises(ExactdynError, match="diverged"):  # far past the linear network's stability limit
        chain.simulate_groups(linear, lam, frac, 20.0, [0, 20], N=64, seeds=[0])
