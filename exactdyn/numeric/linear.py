"""Exact learning curves of linear networks (numeric layer), certified with ball arithmetic.

The error overlaps d^k = (J - B) P_k (J - B) / N per eigenvalue group obey
    dd^k/dalpha = -2 eta lambda_k d^k + eta^2 lambda_k rho_k sum_j lambda_j d^j,
diagonal plus rank one (the eigenmode form of `linear.derive_linear`).  Writing an eigenvalue of
the full system as z = -2 eta u, the u are the roots of the secular function
    g(u) = (eta/2) sum_k rho_k lambda_k^2 / (lambda_k - u) - 1,
one in each gap (lambda_{k+1}, lambda_k) and one below lambda_L; the same u are the roots of the
shifted characteristic polynomial of the moment hierarchy.  Then
    eps_g(alpha) = (1/2) sum_j coef_j exp(-2 eta u_j alpha)
with coef_j = T(u_j) / S2(u_j) (eigenmode route) or F(u_j) / p~'(u_j) (moment route).  The eigenmode
route's O(L^2) sums run either from Python over object arrays of balls or, when FLINT's library can
be loaded, in compiled ball loops (`linear_kernel`) with O(1) Python ball operations per root.
"""
from dataclasses import dataclass
import math
import time

import flint
import numpy as np

from ..errors import ExactdynError, PrecisionError
from ..numbers import certified_decimal, to_fraction, to_fmpq
from ..numbers import bits_for_digits, working_precision
from .certify import certify
from ..spectrum import Spectrum, sequence

ROUTES = ("mode", "moment")
FINE_BITS = 64  # extra bits of the eigenvalues in the compiled route (lambda_k - u next to a pole)
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
    coefficients: tuple
    plateau: object
    status: str
    seconds: float

    def eps_at(self, alpha):
        """eps_g at any alpha from the stored modes (a ball at the solution's precision)."""
        with working_precision(self.bits):
            a = _ball(alpha)
            return self.plateau + sum((c * (r * a).exp() for c, r in zip(self.coefficients, self.rates)),
                                      flint.arb(0)) / 2

    def slope_at(self, alpha):
        """d log eps_g / d log alpha at alpha > 0."""
        with working_precision(self.bits):
            a = _ball(alpha)
            deriv = sum((c * r * (r * a).exp() for c, r in zip(self.coefficients, self.rates)), flint.arb(0)) / 2
            return a * deriv / self.eps_at(alpha)

    def decimals(self):
        """eps_g as decimal strings carrying exactly `digits` certified digits."""
        with working_precision(self.bits):
            return [certified_decimal(x, self.digits) for x in self.eps_g]


def _ball(x):
    """A ball at the working precision (a finer input ball is rounded, its error kept in the radius)."""
    if isinstance(x, flint.arb):
        return x + 0
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
    midpoints until the step or the function's own ball says no more can be had, then one interval
    Newton step on a ball X inside the bracket: u - f(u)/f'(X) inside X proves the one root there."""
    u = guess if lo < guess < hi else (lo + hi) / 2
    bracket = (lo, hi)
    tol = flint.arb(2) ** (-(bits - 16))
    step = abs(hi - lo)
    noise = flint.arb(0)
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
        X = flint.arb(u, width)
        if not (bracket[0] < X and X < bracket[1]):
            break  # a root proved outside the bracket would belong to another gap
        fu, dX = f_and_df(flint.arb(u))[0], f_and_df(X)[1]
        if not dX.contains(0):
            newton = u - fu / dX
            if X.contains(newton):
                return newton
        width *= 16
    raise PrecisionError("a root could not be certified inside its bracket at this precision")


def _mode_route(lam, rho, d0, eta, guesses, bottom, bits):
    """Roots of the secular function by Newton on exact points, each certified by one interval-Newton
    step on a ball X around it (m - g(m)/g'(X) inside X proves a unique root there); the same ball
    evaluation gives the mode's coefficient T/S2.  Sums run over numpy object arrays of balls."""
    lam_v = np.array(lam, dtype=object)
    a_v = np.array([eta / 2 * r * x * x for r, x in zip(rho, lam)], dtype=object)
    b_v = np.array([x * d for x, d in zip(lam, d0)], dtype=object)
    tol = flint.arb(2) ** (-(bits - 16))
    L = len(lam)
    roots, coefs = [], []
    for j in range(L):
        pole_below, pole_above = (bottom if j == L - 1 else lam[j + 1]), lam[j]
        lo, hi = pole_below, pole_above
        u = flint.arb(float(guesses[j]))
        if not (lo < u < hi):
            u = ((lo + hi) / 2).mid()
        for _ in range(4 * bits):
            inv = a_v / (lam_v - u)
            g, dg = inv.sum() - 1, (inv / (lam_v - u)).sum()
            if g.contains(0):
                step = g.rad() / dg.mid()
                break
            if g > 0:
                hi = u
            else:
                lo = u
            step = g.mid() / dg.mid()
            new = (u - step).mid()
            if not (lo < new < hi):
                new, step = ((lo + hi) / 2).mid(), hi - lo
            elif abs(step) <= tol * abs(u):
                break
            u = new
        width = (abs(step) * 4 + tol * abs(u)).mid()
        X = flint.arb(u, width)
        inv = 1 / (lam_v - X)
        s2 = (a_v * inv * inv).sum()
        newton = u - g / s2
        if not (X.contains(newton) and pole_below < X and X < pole_above):
            raise PrecisionError("a root could not be certified at this precision")
        roots.append(newton)
        coefs.append((b_v * inv).sum() / s2)
    return roots, coefs, 2 / sum((r * x for r, x in zip(rho, lam)), flint.arb(0))


def _kernel_mode_route(lam, rho, d0, eta, bottom, bits, lam_fine):
    """The eigenmode route with its O(L^2) sums in compiled FLINT ball loops (`linear_kernel`).

    At each approximate root u (an exact point) the kernel returns balls G = g(u), T(u), S2(u) = g'(u),
    T1 = T'(u), S3 = S2'(u)/2 and the distances to the poles around u, dmin >= their lower bounds
    (every |lambda_k - u| >= dmin).  With delta0 >= |G| / S2(u), rho = 2 delta0 / dmin <= 1/4 and
    delta = delta0 (1 + rho)^2 < rho dmin, each term a_k / (lambda_k - v)^2 on X = [u - delta, u + delta]
    lies within the factors (1 -+ rho)^-2 of its value at u, so g' >= S2(u) / (1 + rho)^2 on X and
    g(u + delta) >= g(u) + delta0 S2(u) >= 0 >= g(u - delta): the gap's one root is r = u + t in X, and
    by the mean value theorem t = -G / (S2 K) with K = [(1 + rho)^-2, (1 - rho)^-2].  Expanding in
    s = t / (lambda_k - u), |s| <= rt = |t| / dmin: 1/(1 - s) = 1 + s + R1, |R1| <= rt^2 / (1 - rt), and
    (1 - s)^-2 = 1 + 2 s + R2, |R2| <= 3 rt^2 / (1 - rt)^2, so
        T(r) = T + T1 t +- sum|b_k| / dmin * rt^2 / (1 - rt),   S2(r) = S2 + 2 S3 t +- S2 * 3 rt^2 / (1 - rt)^2,
    and coef = T(r) / S2(r).  A root that this cannot certify raises PrecisionError (more bits).
    ``lam_fine``: the same eigenvalues as balls at FINE_BITS more bits (for the differences next to a pole)."""
    from . import linear_kernel as kernel

    L = len(lam)
    a = [eta / 2 * r * x * x for r, x in zip(rho, lam)]
    b = [x * d for x, d in zip(lam, d0)]
    lam_hi, lam_lo = kernel.split(lam)
    a_hi, a_lo = kernel.split(a)
    mu_hi, mu_lo = kernel.approximate_roots(lam_hi, lam_lo, a_hi, a_lo, float(bottom), L)
    if not (np.all(np.isfinite(mu_hi)) and np.all(np.isfinite(mu_lo))):
        raise PrecisionError("the approximate roots are not finite")
    b_norm = sum((abs(x) for x in b), flint.arb(0)).upper()
    fine, low = bits + FINE_BITS, max(64, bits - 96)
    with working_precision(fine):
        centers = [(x - float(h) - float(l)).mid() for x, h, l in zip(lam_fine, mu_hi, mu_lo)]
    # A root whose correction t is not below 2^-(bits/2 + 16) of its pole distance is recentred at
    # u + t and summed again (double-double centres hold ~100 bits; more digits need this).
    wanted = flint.arb(2) ** -(bits // 2 + 16)
    roots, coefs, todo = [None] * L, [None] * L, list(range(L))
    for _ in range(8):
        if not todo:
            break
        again = []
        for j, (G, T, S2, T1, S3, above, below, u) in zip(todo, kernel.root_sums(lam_fine, a, b, todo,
                                                                                 [centers[j] for j in todo],
                                                                                 bits, fine, low)):
            dmin = above.lower() if j == L - 1 else min(above.lower(), (-below).lower())
            S2lo = S2.lower()
            if not (dmin > 0 and S2lo > 0 and G.is_finite()):
                raise PrecisionError("a root could not be certified at this precision")
            delta0 = (abs(G).upper() / S2lo).upper()
            rho_ = (2 * delta0 / dmin).upper()
            if not rho_ <= flint.arb("0.25"):
                raise PrecisionError("a root could not be certified at this precision")
            t = -G / (S2 * (1 / (1 + rho_) ** 2).union(1 / (1 - rho_) ** 2))
            rt = (abs(t).upper() / dmin).upper()
            if rt > wanted:
                with working_precision(fine):
                    centers[j] = (u + t.mid()).mid()
                again.append(j)
                continue
            T_r = T + T1 * t + flint.arb(0, (b_norm / dmin * rt ** 2 / (1 - rt)).upper())
            S2_r = S2 + 2 * S3 * t + flint.arb(0, (S2.upper() * 3 * rt ** 2 / (1 - rt) ** 2).upper())
            roots[j], coefs[j] = u + t, T_r / S2_r
        todo = again
    if todo:
        raise PrecisionError("a root could not be certified at this precision")
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
    values = [to_fraction(a, "alpha") for a in sequence(alpha, "alpha")]
    if not values:
        raise ExactdynError("give at least one alpha")
    if any(a < 0 for a in values):
        raise ExactdynError("alpha must be >= 0")
    return tuple(values)


def solve_linear(spectrum, eta, alpha, *, sigma_J=0, initial=None, digits=30, route="mode",
                 trainable=None, source=0, max_bits=MAX_BITS, compiled=None, max_seconds=None):
    """eps_g(alpha) of the linear network (loss 1/2 (sigma - zeta)^2, K = M = 1), certified to `digits`.

    ``initial``: d^k at alpha = 0 per eigenvalue group (default: the expected value for
    B ~ N(0, I), J ~ N(0, sigma_J^2 I)).  ``trainable``: only the first `trainable` eigenvalue
    groups of the student move (feature scaling; eigenmode route); the others keep their error.
    ``source``: sum lambda d of error directions outside the spectrum that the student cannot
    reach (eigenmode route), e.g. the teacher's part outside a trainable subspace.  The working
    precision starts from an estimate and is doubled until every eps_g ball pins down `digits`
    digits (PrecisionError past `max_bits`).  ``compiled``: the eigenmode route's sums in compiled
    FLINT ball loops (True), from Python (False), or compiled when available (None); the solution's
    ``route`` says which ran ('mode-compiled' or 'mode').  ``max_seconds``: refuse up front a request
    estimated to take longer (the message gives the estimate).
    """
    started = time.perf_counter()
    if not isinstance(spectrum, Spectrum):
        raise ExactdynError(f"solve_linear needs an exactdyn spectrum (power_law, from_eigenvalues), got "
                            f"{type(spectrum).__name__}")
    if route not in ROUTES:
        raise ExactdynError(f"unknown route {route!r}: choose {' or '.join(ROUTES)}")
    if not (compiled is None or compiled is True or compiled is False):
        raise ExactdynError(f"compiled must be True, False or None (automatic), got {compiled!r}")
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
    if trainable is not None:
        if isinstance(trainable, bool) or not isinstance(trainable, int) or not 1 <= trainable <= L:
            raise ExactdynError(f"trainable must be a whole number from 1 to L = {L}, got {trainable!r}")
    source_q = to_fmpq(source, "source")
    if source_q < 0:
        raise ExactdynError(f"the error source must be >= 0, got {source}")
    if (trainable is not None or source_q != 0) and route != "mode":
        raise ExactdynError("feature scaling (trainable, source) is solved by the eigenmode route")
    with working_precision(64):
        lam_f = [float(x.mid()) for x in _eigenvalue_balls(spectrum)]
        rho_f = [float(_ball(w).mid()) for w in spectrum.weights]
    if not all(math.isfinite(x) and x > 0 for x in lam_f):
        raise ExactdynError("eigenvalues must be positive and within float range for the root brackets")
    n_train = L if trainable is None else trainable
    use_kernel = route == "mode" and compiled is not False and _kernel_available(compiled)
    if use_kernel and not all(1e-150 < x < 1e150 for x in lam_f):
        if compiled:
            raise ExactdynError("the compiled route needs eigenvalues between 1e-150 and 1e150")
        use_kernel = False
    route_ran = "mode-compiled" if use_kernel else route
    bits = _start_bits(route_ran, digits, lam_f)
    if bits > max_bits:
        raise PrecisionError(f"{digits} digits need at least {bits} bits here, more than the {max_bits} allowed")
    _refuse_costly(route_ran, n_train, bits, len(alphas), max_seconds)
    guesses = None if use_kernel else float_roots(lam_f[:n_train], rho_f[:n_train], float(eta_q))
    if spectrum.prec is not None and spectrum.prec < bits:
        raise ExactdynError(f"the spectrum's balls ({spectrum.prec} bits) are too coarse: "
                            f"build it with prec >= {bits}")

    def run(route_now, guesses, start, ceiling):
        def evaluate(precision):
            with working_precision(precision):
                return _evaluate(spectrum, eta_q, alphas, d0, guesses, route_now, precision, n_train, source_q)

        return certify(evaluate, digits, balls=lambda result: result[0], start_bits=start, max_bits=ceiling)

    ceiling = max_bits if spectrum.prec is None else min(max_bits, spectrum.prec)
    try:
        # chosen automatically, the compiled route gets three doublings before the ball route takes over
        (eps, rates, coefs, plateau, limit), bits = run(route_ran, guesses, bits,
                                                        min(ceiling, 8 * bits) if compiled is None else ceiling)
    except PrecisionError:
        if not (use_kernel and compiled is None):
            raise
        route_ran = route
        bits = _start_bits(route, digits, lam_f)
        (eps, rates, coefs, plateau, limit), bits = run(
            route, float_roots(lam_f[:n_train], rho_f[:n_train], float(eta_q)), bits, ceiling)
    stable = all(r < 0 for r in rates)
    return LinearSolution(alphas, tuple(eps), digits, route_ran, bits, limit, tuple(rates), tuple(coefs), plateau,
                          "ok" if stable else "unstable", time.perf_counter() - started)


def _kernel_available(compiled):
    from . import linear_kernel

    if compiled and not linear_kernel.AVAILABLE:
        raise ExactdynError("the compiled route needs python-flint's FLINT library, which could not be loaded")
    return linear_kernel.AVAILABLE


# Measured (bench/bench_linear.py, 2 cores): seconds per root-term pair at 128 bits for the compiled
# sums (float stage included) and per ball operation from Python; the cost grows like bits^1.6.
_COMPILED_PAIR = 2.5e-7
_PYTHON_OP = 2e-6


def estimate_seconds(route, L, bits, n_alpha):
    """A rough (factor ~3) time estimate of one solve at `bits` bits, for refusing requests up front."""
    scale = max(1.0, bits / 128) ** 1.6
    if route == "mode-compiled":
        return (_COMPILED_PAIR * L * L + 1.5e-6 * L * n_alpha) * scale
    if route == "mode":
        return _PYTHON_OP * (12 * L * L + 4 * L * n_alpha) * scale
    return _PYTHON_OP * L * (L * bits / 64 + 4 * n_alpha)  # C-level polynomial work, already linear in bits


def _refuse_costly(route, L, bits, n_alpha, max_seconds):
    if max_seconds is None:
        return
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise ExactdynError(f"max_seconds must be a positive number, got {max_seconds!r}")
    seconds = estimate_seconds(route, L, bits, n_alpha)
    if seconds > max_seconds:
        raise ExactdynError(f"this solve ({route} route, L = {L}, {bits} bits) would take about {seconds:.2g} s "
                            f"(estimated; limit {max_seconds:g} s): ask for fewer digits or a smaller L")


def _start_bits(route, digits, lam_f):
    """The working precision to start from: the moment route pays for the Vandermonde conditioning;
    the compiled sums start at two limbs (128 bits) when that can hold the digits."""
    L = len(lam_f)
    if route == "mode-compiled":
        return max(128, bits_for_digits(digits) + 8)
    if route == "mode":
        return bits_for_digits(digits) + 64 + 4 * max(L, 1).bit_length()
    spread = math.log2(max(lam_f) / min(lam_f)) if L > 1 else 0.0
    return bits_for_digits(digits) + int(1.3 * L * spread) + 64


def _eigenvalue_balls(spectrum):
    """scale * base[l] as balls at the working precision (never the exact products, which grow like L bits each)."""
    scale = _ball(spectrum.scale)
    return [scale * _ball(b) for b in spectrum.base]


def _evaluate(spectrum, eta_q, alphas, d0, guesses, route, bits, n_train, source):
    eta = flint.arb(eta_q)
    lam = _eigenvalue_balls(spectrum)
    rho = [_ball(w) for w in spectrum.weights]
    d0b = [_ball(x) for x in d0]
    plateau = flint.arb(0)
    if n_train < len(lam) or source != 0:
        # Frozen groups feed a constant into the trainable ones: dd/dalpha = M d + eta^2 a F with
        # F = source + sum_frozen lambda_k d^k.  The fixed point has d*_k = (eta/2) rho_k E, E = F / (1 - (eta/2)
        # sum_trainable rho_k lambda_k); the trainable part relaxes towards it.
        frozen = sum((x * d for x, d in zip(lam[n_train:], d0b[n_train:])), flint.arb(source))
        E = frozen / (1 - eta / 2 * sum((r * x for r, x in zip(rho[:n_train], lam[:n_train])), flint.arb(0)))
        plateau = E / 2
        d0b = [d - eta / 2 * r * E for d, r in zip(d0b[:n_train], rho[:n_train])]
        lam, rho = lam[:n_train], rho[:n_train]
    # below the lowest root: g(u) < -1 + sum_k a_k / (lambda_L - u) there
    bottom = (lam[-1] - sum((eta / 2 * r * x * x for r, x in zip(rho, lam)), flint.arb(0)) - 1).mid() - 1
    if route == "mode-compiled":
        with working_precision(bits + FINE_BITS):
            lam_fine = _eigenvalue_balls(spectrum)[:len(lam)]
        roots, coefs, limit = _kernel_mode_route(lam, rho, d0b, eta, bottom, bits, lam_fine)
    elif route == "mode":
        roots, coefs, limit = _mode_route(lam, rho, d0b, eta, guesses, bottom, bits)
    else:
        L = len(lam)
        balls = spectrum.as_balls(bits)
        c = list(balls.coefficients())
        tau = dict(enumerate(balls.traces(L + 1, include_zero=True)))
        D0, powers = [], list(lam)
        for _ in range(L):
            D0.append(sum((p * d for p, d in zip(powers, d0b)), flint.arb(0)))
            powers = [p * x for p, x in zip(powers, lam)]
        roots, coefs, limit = _moment_route(lam, c, tau, D0, eta, guesses, bottom, bits)
    rates = [-2 * eta * u for u in roots]
    a_balls = [flint.arb(flint.fmpq(a.numerator, a.denominator)) for a in alphas]
    if route == "mode-compiled":
        from .linear_kernel import alpha_sums

        return [plateau + s / 2 for s in alpha_sums(rates, coefs, a_balls, bits)], rates, coefs, plateau, limit
    eps = []
    for a in alphas:
        a_ball = flint.arb(flint.fmpq(a.numerator, a.denominator))
        eps.append(plateau + sum((cf * (r * a_ball).exp() for cf, r in zip(coefs, rates)), flint.arb(0)) / 2)
    return eps, rates, coefs, plateau, limit


def small_eta(spectrum, eta, alpha, *, sigma_J=0, initial=None, bits=256):
    """The eta^2-free closed form (1/2) sum_k lambda_k d^k(0) exp(-2 eta lambda_k alpha), as balls."""
    d0 = expected_initial_overlaps(spectrum, sigma_J) if initial is None else tuple(initial)
    eta_b = _ball(eta)
    with working_precision(bits):
        lam = [_ball(x) for x in spectrum.eigenvalues]
        return [sum((x * _ball(d) * (-2 * eta_b * x * _ball(a)).exp() for x, d in zip(lam, d0)), flint.arb(0)) / 2
                for a in _alpha_list(alpha)]


def integral_approximation(L, beta, eta, alpha, *, sigma_J=0, dps=30):
    """The small-eta sum over a power law replaced by an integral over l in [1, L]:
        eps ~ (1 + s^2) lambda_+^{1/(1+b)} (2 eta alpha)^{-b/(1+b)} [G(b/(1+b), t_L) - G(b/(1+b), t_1)] / (2 L (1+b)),
    t_l = 2 eta alpha lambda_l (G the upper incomplete gamma).  Returns mpf values (None at alpha = 0)
    and the window 1/(2 eta lambda_+) < alpha < L^{1+b}/(2 eta lambda_+) of the power law alpha^{-b/(1+b)}."""
    import mpmath

    b = to_fraction(beta, "beta")
    if isinstance(L, bool) or not isinstance(L, int) or L < 1 or b <= 0 or to_fraction(eta, "eta") <= 0:
        raise ExactdynError(f"the integral approximation needs a whole L >= 1, beta > 0 and eta > 0, got L = {L!r}, "
                            f"beta = {beta}, eta = {eta}")
    with mpmath.workdps(dps):
        b_ = mpmath.mpf(b.numerator) / b.denominator
        e = mpmath.mpf(to_fraction(eta).numerator) / to_fraction(eta).denominator
        s2 = mpmath.mpf(to_fraction(sigma_J)) ** 2 if to_fraction(sigma_J) else mpmath.mpf(0)
        lam_plus = L / mpmath.fsum(mpmath.mpf(l) ** (-(1 + b_)) for l in range(1, L + 1))
        s = b_ / (1 + b_)
        out = []
        for a in _alpha_list(alpha):
            if a == 0:
                out.append(None)
                continue
            x = 2 * e * mpmath.mpf(a.numerator) / a.denominator
            t1, tL = x * lam_plus, x * lam_plus * mpmath.mpf(L) ** (-(1 + b_))
            out.append((1 + s2) * lam_plus ** (1 / (1 + b_)) * x ** (-s) * mpmath.gammainc(s, tL, t1) / (2 * L * (1 + b_)))
        window = (1 / (2 * e * lam_plus), mpmath.mpf(L) ** (1 + b_) / (2 * e * lam_plus))
        return out, window


def approximations(spectrum, eta, alpha, *, initial=None, sigma_J=0, trainable=None, beta=None):
    """The papers' approximations next to the exact curve, as strings for output: the small-eta sum
    with its relative error; with `beta` (a power law started from the expected state) also the
    integral approximation, its error, the window of its power law and the exact local exponent."""
    sol = solve_linear(spectrum, eta, alpha, sigma_J=sigma_J, initial=initial, digits=15, trainable=trainable)
    small = small_eta(spectrum, eta, sol.alpha, sigma_J=sigma_J, initial=initial)
    with working_precision(sol.bits):
        rel_small = [float(abs((s - e) / e).mid()) for s, e in zip(small, sol.eps_g)]
    result = {"small_eta": [f"{float(x.mid()):.12g}" for x in small],
              "small_eta_relative_error": [f"{x:.3g}" for x in rel_small]}
    if beta is not None:
        values, window = integral_approximation(spectrum.L, beta, eta, sol.alpha, sigma_J=sigma_J)
        result["integral"] = [None if v is None else f"{float(v):.12g}" for v in values]
        result["integral_relative_error"] = [None if v is None else f"{abs(float(v) / float(e.mid()) - 1):.3g}"
                                             for v, e in zip(values, sol.eps_g)]
        result["power_law_window"] = [f"{float(window[0]):.6g}", f"{float(window[1]):.6g}"]
        result["local_exponent"] = [None if a == 0 else f"{float(sol.slope_at(a).mid()):.6g}" for a in sol.alpha]
    return result


def random_subspace_limit(spectrum, fraction, *, sigma_J=0, digits=30):
    """The alpha -> infinity error of a linear student trainable only in a random (Haar) subspace of
    dimension fraction * N (feature scaling in a randomly rotated basis), N -> infinity:

        eps_inf = (1 + sigma_J^2)/2 * sum_k rho_k lambda_k / (1 + kappa lambda_k),
        fraction = sum_k rho_k kappa lambda_k / (1 + kappa lambda_k),

    the deterministic equivalent of (1/N) tr[Sigma - Sigma U (U^T Sigma U)^-1 U^T Sigma] /2 times
    E|J0 - B|^2 per direction.  Solved at digits + 10 and again at digits + 30; the digits both agree
    on are returned (an mpf at that precision) with their count."""
    import mpmath

    f = to_fraction(fraction, "fraction")
    if not 0 < f < 1:
        raise ExactdynError(f"the trainable fraction must lie strictly between 0 and 1, got {fraction}")
    s2 = to_fraction(sigma_J, "sigma_J") ** 2

    def solve(dps):
        with mpmath.workdps(dps):
            as_mpf = lambda x: (mpmath.mpf(int(x.p)) / int(x.q) if isinstance(x, flint.fmpq)
                                else mpmath.mpf(x.mid().str(dps + 5, radius=False)))
            lam = [as_mpf(x) for x in spectrum.eigenvalues]
            rho = [as_mpf(x) for x in spectrum.weights]
            target = mpmath.mpf(f.numerator) / f.denominator
            g = lambda k: mpmath.fsum(r * k * x / (1 + k * x) for r, x in zip(rho, lam)) - target
            lo, hi = mpmath.mpf(0), mpmath.mpf(1)
            while g(hi) < 0:
                hi *= 2
            kappa = mpmath.findroot(g, (lo, hi), solver="anderson")
            return (1 + mpmath.mpf(s2.numerator) / s2.denominator) / 2 * mpmath.fsum(
                r * x / (1 + kappa * x) for r, x in zip(rho, lam))

    a, b = solve(digits + 10), solve(digits + 30)
    with mpmath.workdps(digits + 30):
        agree = digits if a == b else min(digits, int(-mpmath.log10(abs(a - b) / abs(b))))
    if agree < digits:
        raise PrecisionError(f"only {agree} digits of the random-subspace limit agree at two precisions")
    return b


@dataclass(frozen=True)
class RandomBasisCurve:
    """eps_g(alpha) for a student trainable in Haar-random subspaces: one exact curve per draw
    (rows of ``per_draw``), their mean and spread, and each draw's alpha -> infinity error (with its eta^2 excess)."""

    alpha: tuple
    per_draw: tuple
    limits: tuple
    N: int
    trainable: int

    @property
    def eps_g(self):
        return tuple(float(x) for x in np.mean(self.per_draw, axis=0))

    @property
    def spread(self):
        """Standard deviation over draws (zero for a single draw)."""
        if len(self.per_draw) == 1:
            return (0.0,) * len(self.alpha)
        return tuple(float(x) for x in np.std(self.per_draw, axis=0, ddof=1))


def haar_subspace(N, n, seed):
    """An N x n matrix with orthonormal columns spanning a Haar-random subspace (draw `seed`)."""
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(N, n)))[0]  # the span of Gaussian columns


def random_basis_curve(spectrum, fraction, eta, alpha, *, N, draws=(0,), sigma_J=0, digits=12):
    """eps_g(alpha) of a linear student (K = M = 1) that moves only in a Haar-random subspace U of
    dimension fraction * N of the N-dimensional input, averaged over teacher and initialisation.

    In the eigenbasis of A = U^T Sigma U (eigenvalues a_i) the error against the subspace's best fit
    obeys the linear-network equations with N_l modes of weight 1/N; the teacher's residual outside
    the subspace is uncorrelated with U^T x, hence independent of it (Gaussian inputs), and enters
    the eta^2 term as the constant source 2 eps_inf.  Each draw's curve is `solve_linear` on that
    spectrum, certified for the draw's float64 eigenpairs.  The O(1/N) rate term 2 eta^2 a_i^2 / N is
    dropped, as in every ODE here."""
    from ..simulate.sgd import group_sizes

    f = to_fraction(fraction, "fraction")
    if isinstance(N, bool) or not isinstance(N, int) or N < 2:
        raise ExactdynError(f"N must be a whole number >= 2, got {N!r}")
    n = f * N
    if not 0 < f < 1 or n.denominator != 1:
        raise ExactdynError(f"the trainable fraction must lie in (0, 1) with fraction x N whole, got {fraction}")
    n = int(n)
    draws = tuple(draws)
    if not draws:
        raise ExactdynError("give at least one draw (seed) of the subspace")
    scale = 1 + to_fraction(sigma_J, "sigma_J") ** 2
    lam, rho = spectrum.floats()
    diag = np.repeat(lam, group_sizes(rho, N))
    alphas = _alpha_list(alpha)
    curves, limits = [], []
    for seed in draws:
        U = haar_subspace(N, n, seed)
        SU = diag[:, None] * U
        a, V = np.linalg.eigh(U.T @ SU)
        if a[0] <= 0:
            raise ExactdynError("U^T Sigma U is singular at float64 precision: use a smaller fraction")
        M = (V.T @ SU.T) / a[:, None]  # rows: the best fit's coordinates per unit teacher
        d = (M * M).sum(1) / N
        eps_inf = (diag.sum() - (a * (M * M).sum(1)).sum()) / (2 * N)
        base, weights, d0 = [], [], []  # eigenvalues descending; ties at float64 share one group
        for i in range(len(a) - 1, -1, -1):
            q = to_fmpq(float(a[i]))
            if base and base[-1] == q:
                weights[-1] += flint.fmpq(1, N)
                d0[-1] += to_fmpq(float(d[i]))
            else:
                base.append(q)
                weights.append(flint.fmpq(1, N))
                d0.append(to_fmpq(float(d[i])))
        scale_q = flint.fmpq(scale.numerator, scale.denominator)
        sub = Spectrum(flint.fmpq(1), tuple(base), tuple(weights), None, f"random subspace of {n}/{N}")
        sol = solve_linear(sub, eta, alphas, initial=[x * scale_q for x in d0],
                           source=to_fmpq(float(2 * eps_inf)) * scale_q, digits=digits)
        if sol.status != "ok":
            raise ExactdynError(f"eta = {eta} is past the stability limit "
                                f"{float(sol.stability_limit.mid()):.6g} of the subspace dynamics")
        curves.append([float(x.mid()) for x in sol.eps_g])
        limits.append(float(sol.plateau.mid()))
    return RandomBasisCurve(alphas, tuple(map(tuple, curves)), tuple(limits), N, n)
