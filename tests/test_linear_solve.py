"""Exact linear learning curves: two routes, higher precision, finite-N SGD, approximations.

The public curves go through solve(Problem("linear", 1, 1, spectrum, eta), ...); the linear-only
extras (feature scaling, random subspaces, the papers' approximations, the local exponent) call
exactdyn.numeric.linear directly."""
from fractions import Fraction

import flint
import mpmath
import numpy as np
import pytest

from exactdyn import ExactdynError, PrecisionError, from_eigenvalues, power_law
from exactdyn.numbers import working_precision
from exactdyn.problem import InitialState, Problem, Status
from exactdyn.simulate.sgd import simulate
from exactdyn.solve import solve
from exactdyn.numeric.linear import integral_approximation, small_eta, solve_linear

ALPHA = [0, "0.5", 3, 40, 700]


def _linear(spec, eta):
    return Problem("linear", 1, 1, spec, eta)


def _same_digits(a, b, digits):
    assert a.rigorous and b.rigorous and a.status is b.status is Status.OK
    assert a.digits == b.digits == (digits,) * len(a.alpha)
    assert a.decimals() == b.decimals()
    with working_precision(max(a.bits, b.bits)):
        for x, y in zip(a.eps_g, b.eps_g):
            assert x.overlaps(y)


def _spectrum(L, beta):
    return power_law(L, beta) if beta != "0.5" else power_law(L, beta, prec=int(1.3 * L * 1.5 * 12) + 2000)


@pytest.mark.parametrize("L", [8, 64])
@pytest.mark.parametrize("beta", ["0.5", 1, 2])
@pytest.mark.parametrize("eta", ["0.01", "0.7", "1.99"])
def test_routes_agree_to_30_digits(L, beta, eta):
    problem = _linear(_spectrum(L, beta), eta)
    mode = solve(problem, None, ALPHA, digits=30, route="mode", sigma_J="0.3")
    moment = solve(problem, None, ALPHA, digits=30, route="moment", sigma_J="0.3")
    _same_digits(mode, moment, 30)


@pytest.mark.slow
@pytest.mark.parametrize("beta,eta", [("0.5", "0.01"), (1, "0.7"), (2, "1.99")])
def test_routes_agree_to_30_digits_L320(beta, eta):
    problem = _linear(_spectrum(320, beta), eta)
    _same_digits(solve(problem, None, ALPHA, digits=30, route="mode"),
                 solve(problem, None, ALPHA, digits=30, route="moment"), 30)


def test_higher_precision_recomputation_agrees():
    problem = _linear(power_law(40, 1), "0.3")
    low = solve(problem, None, ALPHA, digits=30)
    high = solve(problem, None, ALPHA, digits=60)
    for h, lo in zip(high.decimals(), low.decimals()):
        mantissa = lo.split("e")[0]
        assert h.startswith(mantissa[:-1]) and h.endswith(lo[len(mantissa):])  # all but the rounded last digit
    with working_precision(high.bits):
        for x, y in zip(low.eps_g, high.eps_g):
            assert x.overlaps(y) and y.rad() < x.rad()


def test_below_float_range_relative_digits():
    problem = _linear(power_law(8, 1), "0.5")
    alpha = [30000]
    mode = solve(problem, None, alpha, digits=30, route="mode")
    moment = solve(problem, None, alpha, digits=30, route="moment")
    high = solve(problem, None, alpha, digits=50, route="mode")
    value = mode.decimals()[0]
    assert int(value.split("e")[1]) < -1000
    assert value == moment.decimals()[0]
    assert high.decimals()[0].startswith(value.split("e")[0][:-2])  # 28 leading digits agree
    with working_precision(high.bits):
        assert mode.eps_g[0].overlaps(high.eps_g[0])


def test_stability_limit_and_unstable_runs():
    """The limit 2/tau_1 (the mode route's formula) is where the slowest certified rate crosses zero:
    a millionth below it the error decays, a millionth above it grows; the moment route finds the
    limit on its own, as the root of c~_0(eta).  A spectrum with tau_1 = 47/40, not 1."""
    spec = from_eigenvalues([3, 1, "1/4"], ["1/5", "1/2", "3/10"])
    limit = Fraction(80, 47)  # 2 / (3/5 + 1/2 + 3/40)
    for route in ("mode", "moment"):
        below = solve(_linear(spec, limit * (1 - Fraction(1, 10 ** 6))), None, [0, 10 ** 7], digits=10, route=route)
        above = solve(_linear(spec, limit * (1 + Fraction(1, 10 ** 6))), None, [0, 10 ** 7], digits=10, route=route)
        assert below.status is Status.OK and below.eps_g[1] < below.eps_g[0]
        assert above.status is Status.UNSTABLE and above.eps_g[1] > above.eps_g[0] and above.message
        with working_precision(below.bits):
            assert below.stats["stability_limit"].overlaps(flint.arb(flint.fmpq(80, 47)))
    bad = solve(_linear(power_law(16, 1), "2.1"), None, [0, 10, 100], digits=10)  # tau_1 = 1: limit 2
    assert bad.status is Status.UNSTABLE and bad.eps_g[2] > bad.eps_g[1]


def _small_eta_exponent(spec, eta, alpha):
    """d log eps / d log alpha of the eta^2-free sum (1/2) sum_k lambda_k rho_k e^{-2 eta lambda_k alpha}
    (sigma_J = 0), differentiated by hand here in mpmath, apart from the solver's modes."""
    with mpmath.workdps(30):
        lam = [mpmath.mpf(int(x.p)) / int(x.q) for x in spec.eigenvalues]
        rho = [mpmath.mpf(int(x.p)) / int(x.q) for x in spec.weights]
        e, a = mpmath.mpf(eta), mpmath.mpf(alpha)
        terms = [(x * r * mpmath.exp(-2 * e * x * a), -2 * e * x * a) for x, r in zip(lam, rho)]
        return float(mpmath.fsum(t * s for t, s in terms) / mpmath.fsum(t for t, _ in terms))


def test_small_eta_and_integral_approximations_approach_exact():
    spec = power_law(64, 1)
    alpha = [1, 100, 1000, 10000]
    exact = solve_linear(spec, "0.001", alpha, digits=20)
    small = small_eta(spec, "0.001", alpha)
    for x, y in zip(exact.eps_g, small):
        assert abs(float((x - y).mid()) / float(x.mid())) < 1e-3  # O(eta): 5.1e-4 at most here
    integral, (lo, hi) = integral_approximation(64, 1, "0.001", alpha)
    assert lo < 100 < 1000 < hi  # the window is (12.7, 5.2e4)
    for x, y in zip(exact.eps_g[1:3], integral[1:3]):
        assert abs(float(y) / float(x.mid()) - 1) < 0.002  # 0.13% at alpha = 100, 0.19% at 1000
    # The exact local exponent is the eta^2-free sum's to O(eta), and -beta/(1+beta) = -1/2 only as
    # far as the window allows.  At L = 64 the window spans 3.6 decades, and near its upper edge the
    # exponent bends by about -sqrt(t_L)/Gamma(1/2, t_L), t_L = 2 eta lambda_L alpha: the exact
    # exponent is -0.511 at alpha = 100, a decade inside the lower edge, and -0.590 at alpha = 1000.
    slopes = [float(exact.slope_at(a).mid()) for a in (100, 1000)]
    for a, s in zip((100, 1000), slopes):
        assert abs(s - _small_eta_exponent(spec, "0.001", a)) < 1e-3
    assert abs(slopes[0] + 0.5) < 0.015 and slopes[1] < slopes[0] - 0.05


def test_feature_scaling_limit_follows_power_law():
    limits = []
    spec = power_law(256, 1)
    for n in (8, 16, 32, 64):
        sol = solve_linear(spec, "0.5", [10 ** 6], trainable=n, digits=12)
        with working_precision(sol.bits):
            assert sol.eps_g[0].overlaps(sol.plateau) or abs(float((sol.eps_g[0] - sol.plateau).mid())) < 1e-12
        limits.append(float(sol.plateau.mid()))
    slope = np.polyfit(np.log([8, 16, 32, 64]), np.log(limits), 1)[0]
    assert -1.15 < slope < -0.85  # eps_infinity ~ N_l^-beta, beta = 1


def test_bad_requests():
    spec = power_law(4, 1)
    for kwargs in ({"route": "fast"}, {"digits": 0}, {"trainable": 9}):
        with pytest.raises(ExactdynError):
            solve_linear(spec, "0.5", [1], **kwargs)
    with pytest.raises(ExactdynError):
        solve_linear(spec, "-0.5", [1])
    with pytest.raises(ExactdynError):
        solve_linear(spec, "0.5", [-1])
    with pytest.raises(PrecisionError):
        solve_linear(spec, "0.5", [1], digits=40, max_bits=64)


@pytest.mark.slow
@pytest.mark.parametrize("L,alpha", [(8, [0.5, 1.5, 3.0]), (64, [0.5, 1.5, 3.0])])
def test_finite_N_sgd_agrees_with_exact_curve(L, alpha):
    """The mean over 256 SGD runs from one draw (N = 1024, only the data differ) within 4 standard
    errors of the exact curve from that draw's overlaps, at every alpha; the same gate rejects a
    curve 3% off.  (Many seeds at moderate N: the standard error falls as 1/sqrt(N seeds) while the
    cost grows as N^2 seeds; the O(1/N) bias stays well inside the gate.)"""
    N, seeds, batch, sigma_J = 1024, 256, 64, 0.5
    problem = _linear(power_law(L, 1), "0.5")
    lam, frac = problem.spectrum.floats()
    eps = []
    for first in range(0, seeds, batch):  # batches bound the simulator's input buffer
        sim = simulate(problem.structure, lam, frac, float(problem.eta), [0] + alpha, N=N,
                       seeds=range(first, first + batch), sigma_J=sigma_J, init_seed=7)
        d = sim.q[..., 0, 0] - 2 * sim.r[..., 0, 0] + sim.t[None, ..., 0, 0]  # alpha x seed x group
        eps.append(0.5 * (d * np.array(lam)).sum(-1))
    eps = np.concatenate(eps, axis=1)
    start = InitialState(sim.r[0, 0].tolist(), sim.q[0, 0].tolist(), sim.t[0].tolist())
    predicted = np.array(solve(problem, start, alpha, digits=10).floats())
    mean, se = eps[1:].mean(1), eps[1:].std(1, ddof=1) / np.sqrt(seeds)
    assert np.all(np.abs(mean - predicted) < 4 * se), (mean - predicted) / se
    for planted in (0.97, 1.03):
        assert np.all(np.abs(mean - planted * predicted) >= 4 * se), (planted, (mean - planted * predicted) / se)


def test_fast_shifted_coefficients_match_the_derived_formula():
    """The solver forms c~ by one polynomial product; the closed form from the derivation agrees."""
    from exactdyn.symbolic.linear import shifted_coefficient_formula
    from exactdyn.numeric.linear import _shifted_coefficients

    spec = power_law(12, 2)
    with working_precision(2000):
        c = [flint.arb(x) for x in spec.coefficients()]
        tau = {k: flint.arb(t) for k, t in enumerate(spec.traces(13, include_zero=True))}
        eta = flint.arb("0.37")
        for fast, slow in zip(_shifted_coefficients(c, tau, eta), shifted_coefficient_formula(12, c, tau, eta)):
            assert fast.overlaps(slow) and fast.rad() < flint.arb(10) ** -400 * (1 + abs(slow.mid()))


def test_random_subspace_limit_against_a_haar_projection():
    """The deterministic-equivalent limit against (1/2N) tr[Sigma - Sigma U (U^T Sigma U)^-1 U^T Sigma]
    for one Haar-random U at N = 1600 (finite-N fluctuations well under 1%)."""
    from exactdyn.numeric.linear import haar_subspace, random_subspace_limit

    spec = power_law(8, 1)
    lam, rho = spec.floats()
    N = 1600
    diag = np.repeat(lam, [round(r * N) for r in rho])
    for seed, fraction in enumerate(("1/10", "1/4", "1/2")):
        n = round(float(Fraction(fraction)) * N)
        U = haar_subspace(N, n, seed)
        SU = diag[:, None] * U
        finite = (diag.sum() - np.trace(np.linalg.solve(U.T @ SU, SU.T @ SU))) / (2 * N)
        assert abs(float(random_subspace_limit(spec, fraction, digits=20)) / finite - 1) < 0.01


def test_feature_scaling_limits_follow_a_power_law_in_the_trainable_dimension():
    """beta = 1, L = 400: the eigenbasis limit and the random-basis limit both fall as N_l^-beta."""
    from exactdyn.numeric.linear import random_subspace_limit

    spec = power_law(400, 1)
    counts = [4, 8, 16, 32, 64]
    eigen = [float(solve_linear(spec, "0.5", [0], trainable=n, digits=10).plateau.mid()) for n in counts]
    random = [float(random_subspace_limit(spec, Fraction(n, 400), digits=15)) for n in counts]
    for values in (eigen, random):
        slope = np.polyfit(np.log(counts), np.log(values), 1)[0]
        assert abs(slope + 1) < 0.1


def test_random_basis_curve_against_sgd_in_the_same_subspace():
    """One-pass SGD of a student confined to one Haar subspace (numpy, written here) against the
    exact curve for that subspace; the eigenbasis curve with as many trainable directions is far off."""
    from exactdyn.numeric.linear import haar_subspace, random_basis_curve

    spec = power_law(8, 1)
    lam, _ = spec.floats()
    N, n, eta, seeds, alpha = 1024, 256, 0.5, 16, [0.5, 1, 2, 4]
    diag = np.repeat(lam, N // 8)
    U = haar_subspace(N, n, 0)
    rng = np.random.default_rng(1)
    target = rng.normal(size=(seeds, N)) * np.sqrt(1.25)  # B - J0 with sigma_J = 0.5
    w = np.zeros((seeds, n))
    eps, step = [], 0
    for a in alpha:
        while step < a * N:
            x = rng.normal(size=(seeds, N)) * np.sqrt(diag)
            y = x @ U
            w += (eta / N) * ((x * target).sum(1) - (y * w).sum(1))[:, None] * y
            step += 1
        r = target - w @ U.T
        eps.append(0.5 * (r * r * diag).sum(1) / N)
    eps = np.array(eps)
    mean, se = eps.mean(1), eps.std(1, ddof=1) / np.sqrt(seeds)
    exact = random_basis_curve(spec, "1/4", "0.5", alpha, N=N, draws=[0], sigma_J="0.5").eps_g
    eigen = solve_linear(spec, "0.5", alpha, trainable=2, sigma_J="0.5", digits=10).eps_g
    for m, s, e, g in zip(mean, se, exact, eigen):
        assert abs(m - e) < 3 * s
        assert abs(m - float(g.mid())) > 10 * s


def test_random_basis_curve_tends_to_the_deterministic_limit_and_self_averages():
    """Small eta: each draw's alpha -> infinity error is the Haar limit up to finite-N scatter, and the
    scatter of the curves over draws shrinks as 1/N (a linear spectral statistic), not 1/sqrt(N)."""
    from exactdyn.numeric.linear import random_basis_curve, random_subspace_limit

    spec = power_law(4, 1)
    limit = float(random_subspace_limit(spec, "1/4", digits=15))
    spreads, draws = [], 16
    for N in (128, 1024):
        curve = random_basis_curve(spec, "1/4", "0.001", [200, 2000], N=N, draws=range(draws))
        deviation = np.array(curve.limits) / limit - 1
        se = deviation.std(ddof=1) / np.sqrt(draws)
        # 4 standard errors of the mean over draws, plus 1/N for the O(1/N) bias of a finite Haar
        # projection (0.45/N measured over 6000 draws from N = 128 to 1024, a third of one draw's
        # scatter 1.45/N; the eta^2 excess adds 1.3e-4): 1.8% at N = 128, 0.25% at N = 1024.
        gate = 4 * se + 1 / N
        assert abs(deviation.mean()) < gate, (N, deviation.mean(), se)
        if N == 1024:  # planted: a limit 1% off fails the same gate
            assert abs(deviation.mean() + 0.01) > gate and abs(deviation.mean() - 0.01) > gate
        spreads.append(curve.spread[0])
    assert 4.5 < spreads[0] / spreads[1] < 16  # 8 expected; 1/sqrt(N) would give 2.8


def test_random_basis_curve_rejects_bad_requests():
    from exactdyn.numeric.linear import random_basis_curve

    spec = power_law(4, 1)
    for fraction, N, eta in (("1/3", 64, "0.5"), ("1", 64, "0.5"), ("1/4", 1, "0.5"), ("1/4", 64, "40")):
        with pytest.raises(ExactdynError):
            random_basis_curve(spec, fraction, eta, [1], N=N)
    with pytest.raises(ExactdynError):
        random_basis_curve(spec, "1/4", "0.5", [1], N=64, draws=[])
