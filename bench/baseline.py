"""PRE-ENGINE IMPLEMENTATION, KEPT ONLY AS THE BASELINE OF bench/bench_engine.py.  Do not use it.

This is the minimal copy of the numeric paths that exactdyn used before the compiled engine
(exactdyn/numeric/engine.py, exactdyn/solve.py): ``exactdyn/numeric/compiled.py`` (lambdify to
Python closures), ``exactdyn/numeric/committee.py::integrate`` (float64, scipy DOP853 at rtol 1e-9,
checked by a run at 1e-11) and ``exactdyn/numeric/highprec.py::integrate_mp`` (mpmath
Bulirsch-Stoer, checked by a run with 64 more bits).  Those modules are to be deleted from the
package; the benchmark keeps this copy so that it can still measure old against new in one run.

The numerics are unchanged from the originals (same integrators, tolerances, step control and
verification); only argument checks, progress bars, overlaps output and the package's error
classes were dropped.  It imports only what stays in the package: the derivation
(``exactdyn.symbolic.cache.derive``), ``exactdyn.numeric.overlaps``, ``exactdyn.numbers`` and
sympy's lambdify.
"""
from dataclasses import dataclass
import math
import time

import mpmath
import numpy as np
from scipy.integrate import solve_ivp
import sympy as sp

from exactdyn.numbers import bits_for_digits, to_fraction, working_precision
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.symbolic.cache import derive


class BaselineError(RuntimeError):
    pass


# --- exactdyn/numeric/compiled.py -----------------------------------------------------------------

BACKENDS = {"float": ["math"], "mpmath": ["mpmath"]}


@dataclass(frozen=True)
class LambdifiedSystem:
    """rhs(state, params) -> list of d(state)/d(alpha); eps_g(state, params) -> number."""

    system: object
    backend: str
    _rhs: object
    _eps: object

    def rhs(self, state, params):
        return self._rhs(state, params)

    def eps_g(self, state, params):
        return self._eps(state, params)


def compile_system(system, backend="float"):
    """lambdify with the system's intermediates as common subexpressions (each computed once per call)."""
    args = [list(system.states), list(system.params)]
    steps = list(system.intermediates)

    def with_intermediates(exprs):
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations=None)
        return steps + replacements, reduced

    rhs = sp.lambdify(args, list(system.rhs), modules=BACKENDS[backend], cse=with_intermediates)
    eps = sp.lambdify(args, [system.eps_g], modules=BACKENDS[backend], cse=with_intermediates)
    return LambdifiedSystem(system, backend, rhs, lambda s, p: eps(s, p)[0])


# --- exactdyn/numeric/committee.py::integrate ---------------------------------------------------

@dataclass(frozen=True)
class Trajectory:
    alpha: tuple
    eps_g: tuple
    verified_digits: int
    status: str
    seconds: float
    nfev: int = 0                # right-hand side evaluations of the reported (tight) run
    compile_seconds: float = 0.0  # lambdify (bench addition)
    integrate_seconds: float = 0.0  # both DOP853 runs (bench addition)


def integrate(structure, initial, eta, alpha, *, rtol=1e-9, atol=1e-12, verify=True, system=None):
    """eps_g(alpha) from `initial` = (eigenvalues, fractions, r, q, t, L) as floats: scipy DOP853 at
    `rtol`, then (verify) again at rtol/100; the digits are those on which both runs agree."""
    started = time.perf_counter()
    lam, frac, r, q, t, L = initial
    alpha = [float(a) for a in alpha]
    system = system or derive(structure, "mode")
    t0 = time.perf_counter()
    f = compile_system(system, "float")
    compile_seconds = time.perf_counter() - t0
    with np.errstate(all="ignore"):  # float moments lambda^l of high order overflow; the mode basis never reads them
        table = overlap_table(lam, frac, r, q, t, float(eta))
    y0, params = assign(system, table)
    nfev, integrating = [0], [0.0]

    def run(tol):
        t1 = time.perf_counter()
        sol = solve_ivp(lambda _, y: f.rhs(y, params), (0.0, alpha[-1]), np.array(y0, float), method="DOP853",
                        t_eval=alpha, rtol=tol, atol=atol * tol / rtol)
        if sol.status != 0 or not np.all(np.isfinite(sol.y)):
            raise BaselineError(f"the integration failed ({sol.message})")
        nfev[0] = sol.nfev
        integrating[0] += time.perf_counter() - t1
        return sol.y.T

    states = run(rtol)
    eps = np.array([f.eps_g(s, params) for s in states])
    digits = 15
    if verify:
        tight = run(rtol / 100)
        eps_tight = np.array([f.eps_g(s, params) for s in tight])
        diff = np.max(np.abs(eps - eps_tight) / np.maximum(np.abs(eps_tight), 1e-300))
        digits = int(max(0, min(15, math.floor(-math.log10(diff)) if diff > 0 else 15)))
        eps = eps_tight
    status = "ok" if np.all(np.isfinite(eps)) else "diverged"
    return Trajectory(tuple(alpha), tuple(eps.tolist()), digits, status, time.perf_counter() - started,
                      nfev[0], compile_seconds, integrating[0])


# --- exactdyn/numeric/highprec.py::integrate_mp -------------------------------------------------

MAX_LEVEL = 14
TARGET_LEVEL = 9


@dataclass(frozen=True)
class HighPrecisionTrajectory:
    alpha: tuple
    eps_g: tuple
    digits: int
    bits: int
    steps: int
    seconds: float


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


def _integrate(f, y0, alphas, tol, h0):
    y, t, h = list(y0), mpmath.mpf(0), mpmath.mpf(h0)
    out, steps = [], 0
    for target in alphas:
        while t < target:
            step = min(h, target - t)
            new, level, err = _bs_step(f, y, step, tol)
            if new is None:
                h = step / 3
                if h < mpmath.mpf(10) ** -12:
                    raise BaselineError("the high-precision integration cannot reach its tolerance")
                continue
            y, t, steps = new, t + step, steps + 1
            if not all(mpmath.isfinite(v) for v in y):
                raise BaselineError("the high-precision integration diverged")
            if step == h:  # a step cut short to land on an alpha says nothing about the next size
                h = _next_step(step, level, err, tol)
        out.append(list(y))
    return out, steps


def integrate_mp(structure, initial, eta, alpha, *, digits=30, h0=0.1):
    """eps_g(alpha) of the mode system to `digits` verified digits; ``initial`` = (eigenvalues,
    fractions, r, q, t, L) with exact entries.  Two runs (bits_for_digits + 32 bits, tolerance
    10^-(digits+4); then 64 more bits, 10^-(digits+10)); repeated with the lost digits added when
    they agree on fewer than asked, at most twice."""
    started = time.perf_counter()
    lam, frac, r, q, t, L = initial
    alphas = [to_fraction(a, "alpha") for a in alpha]
    system = derive(structure, "mode")
    f = compile_system(system, "mpmath")
    total_steps = [0]

    def run(bits, tol_digits):
        with working_precision(bits):
            lam_mp, frac_mp = [_mp(x) for x in lam], [_mp(x) for x in frac]
            blocks = lambda b: [[[_mp(x) for x in row] for row in mat] for mat in b]
            table = overlap_table(lam_mp, frac_mp, blocks(r), blocks(q), blocks(t), _mp(eta))
            y0, params = assign(system, table)
            rhs = lambda y: f.rhs(y, params)
            states, steps = _integrate(rhs, y0, [_mp(a) for a in alphas], mpmath.mpf(10) ** -tol_digits, h0)
            total_steps[0] += steps
            return [f.eps_g(s, params) for s in states]

    extra = 0
    for _ in range(3):
        bits = bits_for_digits(digits + extra) + 32
        eps = run(bits, digits + extra + 4)
        check = run(bits + 64, digits + extra + 10)
        with working_precision(bits + 64):
            worst = max((abs(a - b) / abs(b) if b != 0 else abs(a - b)) for a, b in zip(eps, check))
            agreed = digits if worst == 0 else int(min(digits, math.floor(-float(mpmath.log10(worst)))))
        if agreed >= digits:
            break
        extra += digits - agreed + 4
    else:
        raise BaselineError(f"only {agreed} of the {digits} digits asked are verified")
    return HighPrecisionTrajectory(tuple(alphas), tuple(check), digits, bits + 64, total_steps[0],
                                   time.perf_counter() - started)
