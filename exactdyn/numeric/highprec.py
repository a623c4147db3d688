"""Arbitrary-precision trajectories of a derived system (mpmath), error-controlled to the digits asked.

A Bulirsch-Stoer integrator (Gragg's modified midpoint rule, polynomial extrapolation in h^2)
reaches high order at every step, which is what many digits need: the error of a fixed-order
method falls only as a power of the step.  The run is repeated with more bits and a tighter
tolerance; only the digits on which both agree are reported.
"""
from dataclasses import dataclass
import math
import time

import mpmath

from ..symbolic.cache import derive
from .compiled import compile_system
from ..errors import ExactdynError, PrecisionError
from ..numbers import to_fraction
from .overlaps import assign, overlap_table
from ..numbers import bits_for_digits, working_precision

MAX_LEVEL = 14
TARGET_LEVEL = 9


@dataclass(frozen=True)
class HighPrecisionTrajectory:
    """eps_g at each alpha as mpf values carrying `digits` verified digits; states per alpha."""

    alpha: tuple
    eps_g: tuple
    digits: int
    bits: int
    basis: str
    states: tuple  # per alpha: {state name: mpf}
    steps: int
    seconds: float

    def decimals(self):
        with mpmath.workprec(self.bits):
            return [mpmath.nstr(e, self.digits, min_fixed=-3, max_fixed=3) for e in self.eps_g]


def _mp(x):
    x = to_fraction(x)
    return mpmath.mpf(x.numerator) / x.denominator


def _bs_step(f, y, h, tol):
    """One Bulirsch-Stoer step: (y(t + h), level, error) or (None, level, error) when the
    extrapolation did not settle below `tol` (relative, max norm) by MAX_LEVEL."""
    table = []
    f0 = f(y)
    err = mpmath.inf
    for k in range(MAX_LEVEL):
        n = 2 * (k + 1)
        hs = h / n
        z0 = y
        z1 = [a + hs * b for a, b in zip(y, f0)]
        for _ in range(1, n):
            d = f(z1)
            z0, z1 = z1, [a + 2 * hs * b for a, b in zip(z0, d)]
        d = f(z1)
        row = [[(a + b + hs * c) / 2 for a, b, c in zip(z0, z1, d)]]
        for j in range(k):
            ratio = (mpmath.mpf(n) / (2 * (k - j))) ** 2 - 1
            row.append([a + (a - b) / ratio for a, b in zip(row[j], table[-1][j])])
        table.append(row)
        if k >= 2:
            err = max(abs(a - b) / max(abs(a), 1) for a, b in zip(row[-1], row[-2]))
            if err < tol:
                return row[-1], k, err
    return None, MAX_LEVEL, err


def _next_step(h, level, err, tol):
    """The error of level k scales as h^(2k+1): aim at tol/10 with about TARGET_LEVEL levels."""
    if err == 0:
        return h * 2
    factor = float((tol / 10 / err) ** (mpmath.mpf(1) / (2 * level + 1)))
    if level > TARGET_LEVEL:
        factor = min(factor, 0.7)
    elif level < TARGET_LEVEL:
        factor = max(factor, 1.3)
    return h * min(max(factor, 0.3), 3.0)


def _integrate(f, y0, alphas, tol, h0, progress=False):
    """States at each alpha (ascending, from 0) by adaptive Bulirsch-Stoer steps."""
    from tqdm import tqdm

    y, t, h = list(y0), mpmath.mpf(0), mpmath.mpf(h0)
    out, steps = [], 0
    for target in tqdm(alphas, disable=not progress, unit="alpha", desc="high precision", leave=False):
        while t < target:
            step = min(h, target - t)
            new, level, err = _bs_step(f, y, step, tol)
            if new is None:
                h = step / 3
                if h < mpmath.mpf(10) ** -12:
                    raise PrecisionError("the high-precision integration cannot reach its tolerance")
                continue
            y, t, steps = new, t + step, steps + 1
            if not all(mpmath.isfinite(v) for v in y):
                raise ExactdynError("the high-precision integration diverged (eta past the stability limit?)")
            if step == h:  # a step cut short to land on an alpha says nothing about the next size
                h = _next_step(step, level, err, tol)
        out.append(list(y))
    return out, steps


def integrate_mp(structure, initial, eta, alpha, *, digits=30, basis="mode", h0=0.1, progress=False):
    """eps_g(alpha) of the derived `basis` system to `digits` verified digits.

    ``initial`` = (eigenvalues, fractions, r, q, t, L) with exact entries (Fractions, ints or
    decimal strings; floats are read as their shortest decimal).  Two runs: at bits_for_digits(digits)
    + 32 bits with relative tolerance 10^-(digits+4), then with 64 more bits and 10^-(digits+10);
    the reported digits are those both agree on.  When they agree on fewer than asked (eps_g near
    zero is a cancellation), both are repeated with the lost digits added, at most twice; then
    PrecisionError."""
    started = time.perf_counter()
    lam, frac, r, q, t, L = initial
    if L != structure.L:
        raise ExactdynError(f"the initial state has {L} eigenvalue groups, the model {structure.L}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 1000:
        raise ExactdynError(f"digits must be a whole number from 1 to 1000, got {digits!r}")
    if basis not in ("mode", "moment"):
        raise ExactdynError(f"unknown basis {basis!r}: mode or moment")
    alphas = [to_fraction(a, "alpha") for a in alpha]
    if any(a < 0 for a in alphas) or alphas != sorted(alphas):
        raise ExactdynError("alpha must be >= 0 and increasing")
    system = derive(structure, basis)
    f = compile_system(system, "mpmath")
    names = [str(s) for s in system.states]

    def run(bits, tol_digits):
        with working_precision(bits):
            lam_mp, frac_mp = [_mp(x) for x in lam], [_mp(x) for x in frac]
            blocks = lambda b: [[[_mp(x) for x in row] for row in mat] for mat in b]
            coefficients = None
            if basis == "moment":
                poly = [mpmath.mpf(1)]
                for x in lam_mp:  # prod (z - lambda_k), low order first
                    poly = [(-x * poly[0])] + [poly[i - 1] - x * poly[i] for i in range(1, len(poly))] + [poly[-1]]
                coefficients = poly[:L]
            table = overlap_table(lam_mp, frac_mp, blocks(r), blocks(q), blocks(t), _mp(eta), coefficients)
            y0, params = assign(system, table)
            rhs = lambda y: f.rhs(y, params)
            states, steps = _integrate(rhs, y0, [_mp(a) for a in alphas], mpmath.mpf(10) ** -tol_digits, h0, progress)
            return [f.eps_g(s, params) for s in states], states, steps

    extra = 0
    for _ in range(3):
        bits = bits_for_digits(digits + extra) + 32
        eps, states, steps = run(bits, digits + extra + 4)
        check, _, _ = run(bits + 64, digits + extra + 10)
        with working_precision(bits + 64):
            worst = max((abs(a - b) / abs(b) if b != 0 else abs(a - b)) for a, b in zip(eps, check))
            agreed = digits if worst == 0 else int(min(digits, math.floor(-float(mpmath.log10(worst)))))
        if agreed >= digits:
            break
        # near zero error eps_g is a cancellation of O(1) overlaps: tighten by the digits it lost
        extra += digits - agreed + 4
    else:
        raise PrecisionError(f"only {agreed} of the {digits} digits asked are verified (two runs disagree)")
    named = tuple({n: v for n, v in zip(names, s)} for s in states)
    return HighPrecisionTrajectory(tuple(alphas), tuple(check), digits, bits + 64, basis, named, steps,
                                   time.perf_counter() - started)
