"""Quadratic networks: the derived ODE (with its eta^2 terms) against finite-N one-pass SGD."""
import numpy as np
import pytest

from exactdyn.symbolic.hierarchy import Structure
from exactdyn.models.quadratic import compile_flow, isotropic_system, trajectory
from exactdyn.simulate.sgd import orthonormal_initial, simulate, simulate_isotropic


def test_overlap_chain_has_the_law_of_the_full_simulation():
    """The exact overlap chain against the N-dimensional simulator: same initial overlaps, 400
    seeds each, means within 4 standard errors and spreads within 20% at alpha = 0.5 and 1."""
    structure = Structure.named("quadratic", 2, 1, 1)
    N, seeds, alpha = 100, 400, [0, 0.5, 1.0]
    full = simulate(structure, [1.0], [1.0], 0.1, alpha, N=N, seeds=range(seeds), sigma_J=0.7, init_seed=5)
    start = (full.r[0, 0, 0], full.q[0, 0, 0], full.t[0, 0])
    chain = simulate_isotropic(structure, 0.1, alpha, N=N, seeds=range(1000, 1000 + seeds), initial=start)
    assert np.allclose(chain.q[0], full.q[0]) and np.allclose(chain.r[0], full.r[0])
    for a in (1, 2):
        for x, y in ((full.q[a, :, 0, 0, 0], chain.q[a, :, 0, 0, 0]), (full.q[a, :, 0, 0, 1], chain.q[a, :, 0, 0, 1]),
                     (full.r[a, :, 0, 0, 0], chain.r[a, :, 0, 0, 0])):
            assert abs(x.mean() - y.mean()) < 4 * np.hypot(x.std(), y.std()) / np.sqrt(seeds)
            assert 0.8 < x.std() / y.std() < 1.25


def _risks(flow, sim):
    return np.array([[flow.risk(flow.pack(sim.r[a, s, 0], sim.q[a, s, 0])) for s in range(len(sim.seeds))]
                     for a in range(len(sim.alpha))])


@pytest.mark.slow
def test_paper_figure1_setting_ode_matches_sgd_through_escape():
    """p = 6, p* = 3, eta = 0.01, N = 5000, 10 data seeds from one orthonormal draw (the paper's
    Fig. 1): population risk and student norms within 3 standard errors through norm learning
    (alpha <~ 50), the plateau and the escape (alpha ~ 800-1200)."""
    eta, N, seeds = 0.01, 5000, 10
    structure = Structure.named("quadratic", 6, 3, 1)
    start = orthonormal_initial(6, 3, N, 2)
    alpha = np.array([0, 10, 50, 200, 500, 800, 1000, 1200, 1500], float)
    sim = simulate_isotropic(structure, eta, alpha, N=N, seeds=range(seeds), initial=start)
    flow = compile_flow(isotropic_system(6, 3))
    _, Q, risk = trajectory(flow, start[0], start[1], eta * alpha, eta=eta)
    sgd = _risks(flow, sim)
    norms = np.einsum("asii->as", sim.q[:, :, 0]) / 6
    for values, ode in ((sgd, risk), (norms, np.einsum("aii->a", Q) / 6)):
        mean, se = values.mean(1), values.std(1, ddof=1) / np.sqrt(seeds)
        assert np.all(np.abs(mean - ode)[1:] < 3 * se[1:]), (mean, ode, se)
    assert risk[4] > 0.8 and risk[-1] < 0.02  # the run does cross the plateau


@pytest.mark.slow
def test_eta_squared_terms_at_eta_0_3():
    """eta = 0.3 from rho(0) = 0.1 G (escape driven by the signal, not by finite-N noise): SGD agrees
    with the full ODE within 3 SE and misses the eta^2-free flow by more than 10 SE."""
    eta, N, seeds = 0.3, 5000, 10
    structure = Structure.named("quadratic", 6, 3, 1)
    start = (0.1 * np.random.default_rng(3).normal(size=(6, 3)), np.eye(6), np.eye(3))
    alpha = np.array([0, 1, 2, 4, 8, 15, 20, 30], float)
    sim = simulate_isotropic(structure, eta, alpha, N=N, seeds=range(seeds), initial=start)
    flow = compile_flow(isotropic_system(6, 3))
    _, _, full = trajectory(flow, start[0], start[1], eta * alpha, eta=eta)
    _, _, gradient_flow = trajectory(flow, start[0], start[1], eta * alpha, eta=0.0)
    sgd = _risks(flow, sim)
    mean, se = sgd.mean(1)[1:], sgd.std(1, ddof=1)[1:] / np.sqrt(seeds)
    assert np.all(np.abs(mean - full[1:]) < 3 * se)
    assert np.max(np.abs(mean - gradient_flow[1:]) / se) > 10
