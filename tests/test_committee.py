"""Nonlinear committee machines: the float64 ODE path against finite-N one-pass SGD."""
import numpy as np
import pytest

from exactdyn import Erf, ExactdynError, Structure, power_law
from exactdyn.numeric.committee import expected_initial, finite_n_initial, integrate
from exactdyn.numeric.compiled import compile_system
from exactdyn.symbolic.cache import derive
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.simulate.sgd import simulate


def _sgd_eps(structure, sim, eta):
    """eps_g of each simulated state, from its overlaps through the derived eps_g."""
    system = derive(structure, "mode")
    f = compile_system(system)
    out = np.empty(sim.r.shape[:2])
    for a in range(sim.r.shape[0]):
        for s in range(sim.r.shape[1]):
            table = overlap_table(list(sim.eigenvalues), list(sim.fractions), sim.r[a, s], sim.q[a, s], sim.t[s], eta)
            out[a, s] = f.eps_g(*assign(system, table))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("L", [1, 4, 16])
@pytest.mark.parametrize("weights", ["one", "sqrt"])
def test_erf_ode_matches_sgd_from_same_initial_overlaps(L, weights):
    K = M = 2
    N, eta, sigma_J, alpha = 2048, 0.5, 0.5, [0.0, 1.0, 3.0, 6.0]
    structure = Structure(Erf(), K, M, L, weights, weights)
    spec = power_law(L, 1)
    lam, frac = [float(x) for x in spec.eigenvalues], [1 / L] * L
    sim = simulate(structure, lam, frac, eta, alpha, N=N, seeds=range(10), sigma_J=sigma_J, init_seed=99)
    eps = _sgd_eps(structure, sim, eta)
    ode = integrate(structure, finite_n_initial(lam, frac, K, M, N, 99, sigma_J), eta, alpha)
    assert ode.verified_digits >= 5
    mean, se = eps.mean(1), eps.std(1, ddof=1) / np.sqrt(eps.shape[1])
    assert np.allclose(eps[0], ode.eps_g[0], rtol=1e-12)  # same initial overlaps
    for a, m, s, e in zip(alpha[1:], mean[1:], se[1:], ode.eps_g[1:]):
        assert abs(m - e) < 3 * s, (a, m, s, e)


def test_expected_initial_breaks_symmetry_and_learns():
    structure = Structure(Erf(), 2, 2, 2)
    spec = power_law(2, 1)
    init = expected_initial([float(x) for x in spec.eigenvalues], [0.5, 0.5], 2, 2, 0.1)
    traj = integrate(structure, init, 0.5, [0, 50, 400])
    assert traj.eps_g[2] < 0.1 * traj.eps_g[0] and traj.verified_digits >= 5


def test_mismatched_initial_state_is_refused():
    structure = Structure(Erf(), 2, 2, 3)
    init = expected_initial([2.0, 1.0], [0.5, 0.5], 2, 2, 0.1)
    with pytest.raises(ExactdynError):
        integrate(structure, init, 0.5, [0, 1])
    with pytest.raises(ExactdynError):
        integrate(Structure(Erf(), 2, 2, 2), init, 0.5, [1, 0])


def test_plateau_measure_on_a_synthetic_curve():
    from exactdyn.numeric.committee import plateau

    alpha = np.linspace(0, 100, 2001)
    eps = 0.01 + 0.5 * np.exp(-alpha) - 0.01 / (1 + np.exp(-(alpha - 60)))  # drop, plateau at 0.01, escape at 60
    start, height, length = plateau(alpha, eps)
    assert height == pytest.approx(0.01, rel=0.02) and 55 < start + length < 62
    assert plateau(alpha, np.ones_like(alpha)) is None


@pytest.mark.slow
def test_plateau_shortens_with_L():
    """The power-law paper's finding, from the derived ODEs: more distinct eigenvalues, shorter plateau."""
    from exactdyn.numeric.committee import plateau

    alpha = np.linspace(0, 1500, 601)
    lengths = []
    for L in (1, 4):
        lam = [float(x) for x in power_law(L, 1).eigenvalues]
        init = finite_n_initial(lam, [1 / L] * L, 2, 2, 1024, 0, 0.01)
        eps = integrate(Structure(Erf(), 2, 2, L), init, 0.1, alpha, verify=False).eps_g
        lengths.append(plateau(alpha, eps)[2])
    assert lengths[1] < 0.6 * lengths[0]
