"""The compiled eigenmode route of the linear solver against the Python ball route and against a
direct solution of the linear ODE by matrix exponentials (float64, and mpmath at 60 digits)."""
from fractions import Fraction

import flint
import mpmath
import numpy as np
import pytest
import scipy.linalg

from exactdyn import ExactdynError, PrecisionError, power_law
from exactdyn.numbers import working_precision
from exactdyn.numeric import linear_kernel
from exactdyn.numeric.linear import _newton_in_bracket, solve_linear

pytestmark = pytest.mark.skipif(not linear_kernel.AVAILABLE, reason="FLINT library not loadable")

ALPHA = [0, "0.5", 3, 40, 700]
NEAR_LIMIT = "1.99"  # the stability limit is 2 / tau_1 = 2 for these normalised spectra


def _spectrum(L, beta):
    return power_law(L, beta) if beta != "0.5" else power_law(L, beta, prec=1024)


def _same(fast, slow):
    assert fast.route == "mode-compiled" and slow.route == "mode"
    assert fast.decimals() == slow.decimals()
    with working_precision(max(fast.bits, slow.bits)):
        for x, y in zip(fast.eps_g, slow.eps_g):
            assert x.overlaps(y)


@pytest.mark.parametrize("L", [8, 64, 320])
@pytest.mark.parametrize("beta", ["0.5", 1, 2])
def test_compiled_digits_equal_the_ball_route(L, beta):
    spec = _spectrum(L, beta)
    fast = solve_linear(spec, NEAR_LIMIT, ALPHA, digits=30, sigma_J="0.3", compiled=True)
    slow = solve_linear(spec, NEAR_LIMIT, ALPHA, digits=30, sigma_J="0.3", compiled=False)
    _same(fast, slow)


def test_compiled_feature_scaling_equals_the_ball_route():
    spec = power_law(64, 1)
    kw = dict(digits=30, trainable=40, source="0.1", initial=[Fraction(k % 7 + 1, 64) for k in range(64)])
    _same(solve_linear(spec, "0.8", ALPHA, compiled=True, **kw), solve_linear(spec, "0.8", ALPHA, compiled=False, **kw))


def _mode_matrix(lam, rho, eta):
    """dd/dalpha = M d with M = -2 eta diag(lambda) + eta^2 (lambda rho) lambda^T, built entry by entry."""
    L = len(lam)
    return [[(-2 * eta * lam[k] if k == j else 0) + eta * eta * lam[k] * rho[k] * lam[j] for j in range(L)]
            for k in range(L)]


def test_float64_matrix_exponential_agrees():
    L, eta = 16, Fraction(199, 100)
    spec = power_law(L, 1)
    d0 = [Fraction(3 + (k * 5) % 11, 10 * L) for k in range(L)]
    sol = solve_linear(spec, eta, ALPHA, initial=d0, digits=30)
    lam = np.array([float(x) for x in spec.eigenvalues])
    M = np.array(_mode_matrix(lam, np.full(L, 1 / L), float(eta)))
    for a, e in zip(sol.alpha, sol.eps_g):
        direct = 0.5 * lam @ (scipy.linalg.expm(M * float(a)) @ np.array([float(x) for x in d0]))
        assert abs(direct / float(e.mid()) - 1) < 1e-11


def test_60_digit_matrix_exponential_agrees():
    L, eta = 32, Fraction(199, 100)
    spec = power_law(L, 1)
    d0 = [Fraction(1 + (k * 7) % 5, 3 * L) for k in range(L)]
    alphas = [Fraction(1, 2), 8, 128]  # exp(M alpha) for the later alphas by squaring the first
    sol = solve_linear(spec, eta, alphas, initial=d0, digits=30)
    with mpmath.workdps(60):
        q = lambda x: mpmath.mpf(int(x.p)) / int(x.q) if isinstance(x, flint.fmpq) else mpmath.mpf(x.numerator) / x.denominator
        lam = [q(x) for x in spec.eigenvalues]
        E = mpmath.expm(mpmath.matrix(_mode_matrix(lam, [mpmath.mpf(1) / L] * L, q(eta))) * q(alphas[0]))
        d = mpmath.matrix([q(x) for x in d0])
        for e in sol.eps_g:
            direct = mpmath.fsum(x * y for x, y in zip(lam, E * d)) / 2
            mid, rad = mpmath.mpf(e.mid().str(40, radius=False)), mpmath.mpf(e.rad().str(5, radius=False))
            assert rad < mpmath.mpf(10) ** -31 * abs(direct)
            assert abs(direct - mid) <= rad + mpmath.mpf(10) ** -45 * abs(direct)
            for _ in range(4):  # alpha x 16
                E = E * E


def test_newton_refuses_a_root_outside_its_bracket():
    # u - 2 has no root in (0, 1): widening the final ball must not pick up the one at 2
    with working_precision(128):
        with pytest.raises(PrecisionError, match="inside its bracket"):
            _newton_in_bracket(lambda u: (u - 2, flint.arb(1) + 0 * u), flint.arb(0), flint.arb(1),
                               flint.arb("0.5"), 128, increasing=True)


def test_refused_up_front_with_an_estimate():
    spec = power_law(400, 1)
    with pytest.raises(ExactdynError, match=r"would take about .* s \(estimated"):
        solve_linear(spec, "0.5", [1], digits=30, max_seconds=0.001)
    with pytest.raises(ExactdynError, match="would take about"):
        solve_linear(spec, "0.5", [1], digits=30, compiled=False, max_seconds=0.001)
    with pytest.raises(PrecisionError, match="bits"):
        solve_linear(spec, "0.5", [1], digits=100_000, max_bits=1 << 16)
    with pytest.raises(ExactdynError, match="compiled must be"):
        solve_linear(spec, "0.5", [1], compiled="yes")


def test_an_uncertifiable_compiled_run_falls_back_to_the_ball_route(monkeypatch):
    from exactdyn.numeric import linear

    def fail(*args):
        raise PrecisionError("planted")

    monkeypatch.setattr(linear, "_kernel_mode_route", fail)
    spec = power_law(8, 1)
    assert solve_linear(spec, "0.5", [1], digits=20).route == "mode"
    with pytest.raises(PrecisionError):
        solve_linear(spec, "0.5", [1], digits=20, compiled=True, max_bits=1024)
