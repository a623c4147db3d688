"""erf committee machines: the ODE (solve, float64) against finite-N one-pass SGD from the same overlaps."""
import numpy as np
import pytest

from exactdyn import ExactdynError, power_law
from exactdyn.numeric.plateau import curve_plateau
from exactdyn.problem import InitialState, Problem
from exactdyn.simulate.sgd import simulate
from exactdyn.solve import solve

GATE = 4  # standard errors of the mean over seeds
PLANTED = 0.03  # a prediction this far off must fail the same gate


def _erf_eps_g(R, Q, T, v, w):
    """eps_g = <(sum_i v g(x_i) - sum_n w g(y_n))^2> / 2 for g(x) = erf(x / sqrt 2), from first-order
    overlaps (leading axes broadcast), by <g(u) g(u')> = (2/pi) asin(C / sqrt((1 + C_uu)(1 + C_u'u')))
    (Saad & Solla): written here, independently of the derived eps_g the ODE uses."""
    qd, td = np.diagonal(Q, axis1=-2, axis2=-1), np.diagonal(T, axis1=-2, axis2=-1)
    pair = lambda C, a, b: 2 / np.pi * np.arcsin(C / np.sqrt((1 + a[..., :, None]) * (1 + b[..., None, :])))
    total = (v * v * pair(Q, qd, qd).sum((-2, -1)) + w * w * pair(T, td, td).sum((-2, -1))
             - 2 * v * w * pair(R, qd, td).sum((-2, -1)))
    return total / 2


def _sgd_curve(problem, N, seeds, sigma_J, alpha, init_seed):
    """eps_g[a, s] of one-pass SGD, every seed from the draw `init_seed` (only the data differ)."""
    lam, frac = problem.spectrum.floats()
    sim = simulate(problem.structure, lam, frac, float(problem.eta), alpha, N=N, seeds=range(seeds),
                   sigma_J=float(sigma_J), init_seed=init_seed)
    lam = np.array(lam)[:, None, None]
    first = lambda x: (x * lam).sum(-3)  # X^(1) = sum_k lambda_k x^k
    conv = {"one": lambda n: 1.0, "sqrt": lambda n: n ** -0.5}[problem.output_weights]
    return _erf_eps_g(first(sim.r), first(sim.q), first(sim.t)[None], conv(problem.K), conv(problem.M))


@pytest.mark.slow
@pytest.mark.parametrize("L", [1, 4, 16])
@pytest.mark.parametrize("weights", ["one", "sqrt"])
def test_erf_ode_matches_sgd_from_same_initial_overlaps(L, weights):
    """The ODE from one draw's overlaps predicts the mean over SGD runs from that draw (40 seeds,
    N = 2048: standard errors 0.2-0.4%) to within 4 standard errors at every alpha (largest |z| 1.7);
    the same gate rejects a prediction 3% off (|z| >= 6.8)."""
    N, seeds, sigma_J, alpha = 2048, 40, "0.5", [0, 1, 3, 6]
    problem = Problem("erf", 2, 2, power_law(L, 1), "0.5", output_weights=weights)
    eps = _sgd_curve(problem, N, seeds, sigma_J, alpha, init_seed=99)
    ode = solve(problem, InitialState.draw(problem, N, seed=99, sigma_J=sigma_J), alpha)
    assert ode.ok and min(ode.digits) >= 5
    predicted = np.array(ode.floats())
    assert np.allclose(eps[0], predicted[0], rtol=1e-12)  # same overlaps; derived eps_g = the closed form
    mean, se = eps[1:].mean(1), eps[1:].std(1, ddof=1) / np.sqrt(seeds)
    z = (mean - predicted[1:]) / se
    assert np.all(np.abs(z) < GATE), (alpha, mean, se, predicted)
    for sign in (1, -1):  # planted error: the gate has the power to see a few percent
        planted = (mean - (1 + sign * PLANTED) * predicted[1:]) / se
        assert np.all(np.abs(planted) >= GATE), planted


def test_expected_initial_breaks_symmetry_and_learns():
    problem = Problem("erf", 2, 2, power_law(2, 1), "0.5")
    sol = solve(problem, InitialState.expected(problem, "0.1"), [0, 50, 400])
    assert sol.ok and min(sol.digits) >= 5 and sol.eps_g[2] < 0.1 * sol.eps_g[0]
    # without the symmetry-breaking perturbation the students stay alike and stall on the plateau
    stuck = solve(problem, InitialState.expected(problem, "0.1", perturbation=0), [0, 50, 400])
    assert stuck.eps_g[2] > 0.5 * stuck.eps_g[1]


def test_mismatched_initial_state_is_refused():
    problem = Problem("erf", 2, 2, power_law(3, 1), "0.5")
    other = InitialState.expected(Problem("erf", 2, 2, power_law(2, 1), "0.5"), "0.1")
    with pytest.raises(ExactdynError):
        solve(problem, other, [0, 1])
    with pytest.raises(ExactdynError):
        solve(Problem("erf", 2, 2, power_law(2, 1), "0.5"), other, [1, 0])


@pytest.mark.slow
def test_plateau_shortens_with_L():
    """The power-law paper's finding, from the derived ODEs: more distinct eigenvalues, shorter plateau."""
    alpha = np.linspace(0, 1500, 601).tolist()
    lengths = []
    for L in (1, 4):
        problem = Problem("erf", 2, 2, power_law(L, 1), "0.1")
        sol = solve(problem, InitialState.draw(problem, 1024, seed=0, sigma_J="0.01"), alpha)
        lengths.append(curve_plateau(alpha, sol.floats())[2])
    assert lengths[1] < 0.6 * lengths[0]
