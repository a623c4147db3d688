"""Exact learning curves of linear networks (numeric layer), certified with ball arithmetic.

The error overlaps d^k = (J - B) P_k (J - B) / N per eigenvalue group obey
    dd^k/dalpha = -2 eta lambda_k d^k + eta^2 lambda_k rho_k sum_j lambda_j d^j,
diagonal plus rank one (the eigenmode form of `linear.derive_linear`).  Writing an eigenvalue of
the full system as z = -2 eta u, the u are the roots of the secular function
    g(u) = (eta/2) sum_k rho_k lambda_k^2 / (lambda_k - u) - 1,
one in each gap (lambda_{k+1}, lambda_k) and one below lambda_L; the same u are the roots of the
shifted characteristic polynomial of the moment hierarchy.  Then
    eps_g(alpha) = (1/2) sum_j coef_j exp(-2 eta u_j alpha)
with coef_j = T(u_j) / S2(u_j) (eigenmode route) or F(u_j) / p~'(u_j) (moment route).
"""
from dataclasses import dataclass
from fractions import Fraction
import math
import time

import flint
import numpy as np

from .errors import ExactdynError, PrecisionError
from .exact import certified_decimal, to_fraction, to_fmpq
from .linear import shifted_coefficient_formula
from .precision import bits_for_digits, working_precision

ROUTES = ("mode", "moment")
MAX_BITS = 1 << 22


@dataclass(frozen=True)
class LinearSolution:
    """eps_g at each alpha as certified balls; ``status`` is 'ok' or 'unstable' (eta past the limit)."""

    alpha: tuple
    eps_g: tuple
    digits: int
    route: str
    bits: int
    stability_limit: object
    rates: tuple
    status: str
    seconds: float

    def decimals(self):
        """eps_g as decimal strings carrying exactly `digits` certified digits."""
        with working_precision(self.bits):
            return [certified_decimal(x, self.digits) for x in self.eps_g]


def _ball(x):
    if isinstance(x, flint.arb):
        return x
    if isinstance(x, flint.fmpq):
        return flint.arb(x)
    f = to_fraction(x)
    return flint.arb(flint.fmpq(f.numerator, f.denominator))


def expected_initial_overlaps(spectrum, sigma_J):
    """d^k at alpha = 0 averaged over B ~ N(0, I), J ~ N(0, sigma_J^2 I): rho_k (1 + sigma_J^2)."""
    s2 = to_fmpq(sigma_J, "sigma_J") ** 2
    return tuple(w * (1 + s2) for w in spectrum.weights)


def float_roots(lam, rho, eta):
    """float64 roots u_j of the secular function, by vectorised bisection on the offset from the
    pole above each root (keeps relative accuracy where a root hugs its pole)."""
    lam = np.asarray(lam, float)
    a = eta / 2 * np.asarray(rho, float) * lam ** 2
    L = lam.size
    upper = lam
    lower = np.append(lam[1:], lam[-1] - a.sum() - 1.0)
    gap = upper - lower
    lo, hi = np.zeros(L), gap.copy()
    for _ in range(60):
        mu = (lo + hi) / 2
        g = np.zeros(L)
        for start in range(0, L, 512):  # rows of the Cauchy matrix, in blocks to bound memory
            rows = slice(start, min(L, start + 512))
            diff = (lam[None, :] - upper[rows, None]) + mu[rows, None]
            g[rows] = (a[None, :] / diff).sum(1) - 1.0
        # g decreases in mu (u = upper - mu increases): positive means the root lies further out
        positive = g > 0
        lo = np.where(positive, mu, lo)
        hi = np.where(positive, hi, mu)
    return upper - (lo + hi) / 2


def _newton_in_bracket(f_and_df, lo, hi, guess, bits, increasing):
    """A certified root ball in (lo, hi) of a function monotone there: safeguarded Newton on exact
    midpoints until the step or the function's own ball says no more can be had, then a sign
    change checked with balls."""
    u = guess if lo < guess < hi else (lo + hi) / 2
    tol = flint.arb(2) ** (-(bits - 16))
    noise = step = abs(hi - lo)
    for _ in range(4 * bits):
        f, df = f_and_df(u)
        if f.contains(0):
            noise = f.rad() / abs(df.mid()) if not df.contains(0) else abs(hi - lo)
            break
        if (f > 0) == increasing:
            hi = u
        else:
            lo = u
        step = f.mid() / df.mid() if not df.contains(0) else hi - lo
        new = (u - step).mid()
        if not (lo < new < hi):
            new = ((lo + hi) / 2).mid()
            step = hi - lo
        u = new
        if abs(step) <= tol * abs(u):
            break
    width = max(abs(step).mid() * 4, noise * 4, (tol * abs(u)).mid())
    for _ in range(6):
        a, b = (u - width).mid(), (u + width).mid()
        fa, fb = f_and_df(a)[0], f_and_df(b)[0]
        if (fa < 0 and fb > 0) if increasing else (fa > 0 and fb < 0):
            return flint.arb(u, width)
        width *= 16
    raise PrecisionError("a root could not be certified at this precision")


def _mode_route(lam, rho, d0, eta, guesses, bottom, bits):
    a = [eta / 2 * r * x * x for r, x in zip(rho, lam)]
    b = [x * d for x, d in zip(lam, d0)]

    def g_and_dg(u):
        s1 = s2 = flint.arb(0)
        for ak, xk in zip(a, lam):
            inv = ak / (xk - u)
            s1 += inv
            s2 += inv / (xk - u)
        return s1 - 1, s2

    roots, coefs = [], []
    for j in range(len(lam)):
        u = _newton_in_bracket(g_and_dg, bottom if j == len(lam) - 1 else lam[j + 1], lam[j],
                               flint.arb(float(guesses[j])), bits, increasing=True)
        t = s2 = flint.arb(0)
        for ak, bk, xk in zip(a, b, lam):
            inv = 1 / (xk - u)
            t += bk * inv
            s2 += ak * inv * inv
        roots.append(u)
        coefs.append(t / s2)
    return roots, coefs, 2 / sum((r * x for r, x in zip(rho, lam)), flint.arb(0))


def _moment_route(lam, c, tau, D0, eta, guesses, bottom, bits):
    L = len(lam)
    p = flint.arb_poly(_shifted_coefficients(c, tau, eta) + [flint.arb(1)])
    dp = p.derivative()
    # The left eigenvector at u is w_l = sum_{i>=l} c_i u^{i-l} (Horner partial sums, c_L = 1), the
    # right one starts with 1 and w.v = p~'(u); w.D0 = F(u) with F_n = sum_l c_{l+n} D0_l.
    F = flint.arb_poly(_correlate(list(c) + [flint.arb(1)], list(D0)))

    def p_and_dp(u):
        return p(u), dp(u)

    roots, coefs = [], []
    for j in range(L):
        lo = bottom if j == L - 1 else lam[j + 1]
        sign_lo = p(lo)
        if sign_lo.contains(0):
            raise PrecisionError("the shifted polynomial's sign is not resolved at this precision")
        u = _newton_in_bracket(p_and_dp, lo, lam[j], flint.arb(float(guesses[j])), bits, increasing=sign_lo < 0)
        roots.append(u)
        coefs.append(F(u) / dp(u))
    # The stability limit is where p~(0) = c~_0 vanishes; c~_0 is linear in eta.
    at0 = _shifted_coefficients(c, tau, flint.arb(0))[0]
    slope = (_shifted_coefficients(c, tau, flint.arb(2))[0] - at0) / 2
    return roots, coefs, -at0 / slope


def _correlate(a, b):
    """r_n = sum_l a[l + n] b[l - 1] for n = 0..len(b)-1 (a[k] = 0 past its end), by one product.

    a[i] * b[L-1-m] of a(x) * rev(b)(x) sits at power i + m; i = l + n, m = L - l gives n + L.
    """
    L = len(b)
    prod = (flint.arb_poly(a) * flint.arb_poly(b[::-1])).coeffs()
    prod += [flint.arb(0)] * (2 * L + 1 - len(prod))
    return [prod[n + L] for n in range(L)]


def _shifted_coefficients(c, tau, eta):
    """c~_i = c_i + (eta/2) sum_{j>i} c_j tau_{j+1-i} (c_L = 1); tau[k] = tau_k."""
    L = len(c)
    coeffs = list(c) + [flint.arb(1)]
    # sum_{m>=1} c_{i+m} tau_{m+1} = r_i of _correlate with b[l-1] = tau_{l+1}, l = 1..L.
    corr = _correlate(coeffs, [tau[l + 1] for l in range(1, L + 1)])
    return [coeffs[i] + eta / 2 * corr[i] for i in range(L)]


def _alpha_list(alpha):
    values = [to_fraction(a, "alpha") for a in alpha]
    if not values:
        raise ExactdynError("give at least one alpha")
    if any(a < 0 for a in values):
        raise ExactdynError("alpha must be >= 0")
    return tuple(values)


def solve_linear(spectrum, eta, alpha, *, sigma_J=0, initial=None, digits=30, route="mode",
                 max_bits=MAX_BITS):
    """eps_g(alpha) of the linear network (loss 1/2 (sigma - zeta)^2, K = M = 1), certified to `digits`.

    ``initial``: d^k at alpha = 0 per eigenvalue group (default: the expected value for
    B ~ N(0, I), J ~ N(0, sigma_J^2 I)).  The working precision starts from an estimate and is
    doubled until every eps_g ball pins down `digits` digits (PrecisionError past `max_bits`).
    """
    started = time.perf_counter()
    if route not in ROUTES:
        raise ExactdynError(f"unknown route {route!r}: choose {' or '.join(ROUTES)}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 100_000:
        raise ExactdynError(f"digits must be a whole number from 1 to 100000, got {digits!r}")
    eta_q = to_fmpq(eta, "eta")
    if eta_q <= 0:
        raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
    alphas = _alpha_list(alpha)
    L = spectrum.L
    d0 = expected_initial_overlaps(spectrum, sigma_J) if initial is None else tuple(initial)
    if len(d0) != L:
        raise ExactdynError(f"{len(d0)} initial overlaps for {L} eigenvalue groups")
    with working_precision(64):
        lam_f = [float(x) if isinstance(x, flint.fmpq) else float(x.mid()) for x in spectrum.eigenvalues]
        rho_f = [float(w) if isinstance(w, flint.fmpq) else float(w.mid()) for w in spectrum.weights]
    if not all(math.isfinite(x) and x > 0 for x in lam_f):
        raise ExactdynError("eigenvalues must be positive and within float range for the root brackets")
    guesses = float_roots(lam_f, rho_f, float(eta_q))
    need = (digits + 1) * math.log2(10)
    if route == "mode":
        bits = bits_for_digits(digits) + 2 * max(L, 1).bit_length()
    else:
        spread = math.log2(max(lam_f) / min(lam_f)) if L > 1 else 0.0
        bits = bits_for_digits(digits) + int(L * spread) + 64
    if spectrum.prec is not None and spectrum.prec < bits:
        raise ExactdynError(f"the spectrum's balls ({spectrum.prec} bits) are too coarse: "
                            f"build it with prec >= {bits}")
    while True:
        try:
            with working_precision(bits):
                eps, rates, limit = _evaluate(spectrum, eta_q, alphas, d0, guesses, route, bits)
            if all(x.is_finite() and (x.rel_accuracy_bits() >= need) for x in eps):
                break
        except PrecisionError:
            pass
        bits *= 2
        if bits > max_bits or (spectrum.prec is not None and bits > spectrum.prec):
            raise PrecisionError(f"{digits} digits could not be certified within {bits // 2} bits")
    stable = all(r < 0 for r in rates)
    return LinearSolution(alphas, tuple(eps), digits, route, bits, limit, tuple(rates),
                          "ok" if stable else "unstable", time.perf_counter() - started)


def _evaluate(spectrum, eta_q, alphas, d0, guesses, route, bits):
    eta = flint.arb(eta_q)
    lam = [_ball(x) for x in spectrum.eigenvalues]
    rho = [_ball(w) for w in spectrum.weights]
    d0b = [_ball(x) for x in d0]
    # below the lowest root: g(u) < -1 + sum_k a_k / (lambda_L - u) there
    bottom = (lam[-1] - sum((eta / 2 * r * x * x for r, x in zip(rho, lam)), flint.arb(0)) - 1).mid() - 1
    if route == "mode":
        roots, coefs, limit = _mode_route(lam, rho, d0b, eta, guesses, bottom, bits)
    else:
        L = len(lam)
        c = [_ball(x) for x in spectrum.coefficients()]
        tau = {k: _ball(t) for k, t in enumerate(spectrum.traces(L + 1, include_zero=True))}
        D0, powers = [], list(lam)
        for _ in range(L):
            D0.append(sum((p * d for p, d in zip(powers, d0b)), flint.arb(0)))
            powers = [p * x for p, x in zip(powers, lam)]
        roots, coefs, limit = _moment_route(lam, c, tau, D0, eta, guesses, bottom, bits)
    rates = [-2 * eta * u for u in roots]
    eps = []
    for a in alphas:
        a_ball = flint.arb(flint.fmpq(a.numerator, a.denominator))
        eps.append(sum((cf * (r * a_ball).exp() for cf, r in zip(coefs, rates)), flint.arb(0)) / 2)
    return eps, rates, limit
