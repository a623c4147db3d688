"""The compiled engine: one derived ODESystem, compiled once by LLVM (heyoka), integrated many times.

- float64: the right-hand side compiled to a heyoka ``cfunc`` and integrated by ODEPACK's LSODA,
  which switches between Adams (non-stiff) and BDF (stiff) by itself, with a dense
  finite-difference Jacobian; the eigenmode systems, stiff at large L, go to grouped.py instead.
- arbitrary precision: heyoka's Taylor integrator in MPFR (``fp_type=heyoka.real``), whose order
  grows with the digits asked, so that many digits cost a polynomial, not an exponential, effort.

Exact constants stay exact: integers and dyadic rationals go into the expression as numbers;
every other constant (1/3, pi, sqrt 2, ...) becomes a parameter whose value is computed once at
the working precision.  Nothing here calls sympy after compilation.
"""
from dataclasses import dataclass
from fractions import Fraction
import math
import time

import flint
import heyoka as hy
import mpmath
import numpy as np
from scipy.integrate import solve_ivp
import sympy as sp

from ..errors import ExactdynError, PrecisionError
from ..numbers import working_precision

_FUNCTIONS = {sp.erf: hy.erf, sp.exp: hy.exp, sp.asin: hy.asin, sp.acos: hy.acos, sp.atan: hy.atan,
              sp.log: hy.log, sp.sqrt: hy.sqrt, sp.tanh: hy.tanh, sp.sin: hy.sin, sp.cos: hy.cos}
_MAX_DYADIC_BITS = 53
# float64 absolute tolerance per unit of rtol: far below it the integrators chase rounding in the
# components that cross zero (erf L = 4 to alpha = 10^4 took LSODA 220 s at 1e-6 * rtol)
ATOL_PER_RTOL = 1e-2


class Converter:
    """sympy -> heyoka expressions, memoised; non-dyadic constants become trailing parameters."""

    def __init__(self, symbols, first_constant):
        self.known = dict(symbols)
        self.constants = []
        self.first_constant = first_constant
        self.memo = {}

    def constant(self, value):
        self.constants.append(value)
        return hy.par[self.first_constant + len(self.constants) - 1]

    def __call__(self, expr):
        if expr in self.known:
            return self.known[expr]
        done = self.memo.get(expr)
        if done is None:
            done = self.memo[expr] = self._convert(expr)
        return done

    def _convert(self, e):
        if isinstance(e, sp.Rational):
            dyadic = e.q & (e.q - 1) == 0 and abs(e.p) < 2 ** _MAX_DYADIC_BITS
            return hy.expression(float(e)) if dyadic else self.constant(e)
        if not e.free_symbols:
            return self.constant(e)
        if isinstance(e, sp.Add):
            return hy.sum([self(a) for a in e.args])
        if isinstance(e, sp.Mul):
            return hy.prod([self(a) for a in e.args])
        if isinstance(e, sp.Pow):
            base, exponent = e.args
            if exponent == sp.S.Half:
                return hy.sqrt(self(base))
            if exponent == -sp.S.Half:
                return 1 / hy.sqrt(self(base))
            if isinstance(exponent, sp.Integer):
                return _integer_power(self(base), int(exponent))
            return self(base) ** self(exponent)
        if type(e) in _FUNCTIONS:
            return _FUNCTIONS[type(e)](*[self(a) for a in e.args])
        raise ExactdynError(f"the engine cannot compile {type(e).__name__} (in {str(e)[:80]})")


def _integer_power(base, n):
    """base**n, as a product for n > 2: heyoka's Taylor recurrence for pow divides by the base (NaN at 0)."""
    if n < 0:
        return 1 / _integer_power(base, -n)
    return hy.prod([base] * n) if n > 2 else base ** n


@dataclass(frozen=True)
class CompiledSystem:
    """The heyoka form of an ODESystem: variables, right-hand sides, eps_g and the exact constants
    (sympy numbers) that follow the system's own parameters."""

    system: object
    variables: tuple
    rhs: tuple
    eps_g: object
    constants: tuple

    def parameter_values(self, params, fp):
        """The system's parameter values followed by the constants, in the number type `fp`."""
        return [fp(p) for p in params] + [fp(c) for c in self.constants]


_COMPILED = {}


def compile_system(system):
    """The heyoka form of `system` (memoised per system object for this process)."""
    key = id(system)
    hit = _COMPILED.get(key)
    if hit is not None and hit.system is system:
        return hit
    variables = tuple(hy.expression(f"y{i}") for i in range(len(system.states)))
    symbols = dict(zip(system.states, variables))
    symbols.update({p: hy.par[j] for j, p in enumerate(system.params)})
    conv = Converter(symbols, len(system.params))
    for sym, value in system.intermediates:
        conv.known[sym] = conv(value)
    rhs = tuple(conv(e) for e in system.rhs)
    eps = conv(system.eps_g)
    compiled = CompiledSystem(system, variables, rhs, eps, tuple(conv.constants))
    _COMPILED[key] = compiled
    return compiled


def float_number(x):
    """float64 of an exact number (Fraction, int, sympy constant) or a float."""
    if isinstance(x, sp.Basic):
        return float(x.evalf(20))
    return float(x)


def real_number(bits):
    """A converter to heyoka.real at `bits` (exact input rounded once, at that precision)."""
    def convert(x):
        if isinstance(x, float):
            x = Fraction(x)  # a float in a state is its exact binary value
        if isinstance(x, (int, Fraction)) or isinstance(x, sp.Rational):
            x = Fraction(x) if not isinstance(x, sp.Rational) else Fraction(int(x.p), int(x.q))
            return hy.real(x.numerator, bits) / hy.real(x.denominator, bits)
        if isinstance(x, sp.Basic):
            return hy.real(str(x.evalf(math.ceil(bits / 3.3) + 10)), bits)
        if isinstance(x, mpmath.mpf):
            with working_precision(bits + 10):
                return hy.real(mpmath.nstr(x, math.ceil(bits / 3.3) + 5, strip_zeros=False), bits)
        raise ExactdynError(f"cannot hand {type(x).__name__} to the engine")
    return convert


def to_mpf(x, bits):
    """heyoka.real -> mpmath.mpf at `bits` (through its full decimal string)."""
    with working_precision(bits):
        return mpmath.mpf(str(x))


@dataclass(frozen=True)
class Run:
    """States at each alpha (rows), eps_g at each alpha, and the integrator's statistics."""

    states: tuple
    eps_g: tuple
    steps: int
    seconds: float


def diverged(alpha_reached):
    return ExactdynError(f"the integration diverged at alpha = {alpha_reached:.6g} "
                         "(eta past the stability limit?)")


def integrate_float(compiled, y0, params, alpha, *, rtol):
    """float64 trajectory by LSODA on the compiled right-hand side; eps_g by a compiled function."""
    started = time.perf_counter()
    pars = np.array(compiled.parameter_values(params, float_number), dtype=float)
    rhs = _float_cfunc(compiled, "rhs")
    eps = _float_cfunc(compiled, "eps")
    grid = np.array([float(a) for a in alpha])
    y = np.array([float_number(v) for v in y0], dtype=float)
    fun = lambda _, state: rhs(np.ascontiguousarray(state), pars=pars[:rhs.nparams])
    evaluations = 0
    if grid[-1] == 0:  # nothing to integrate: every alpha is the start
        states = np.repeat(y[None, :], len(grid), axis=0)
    else:
        with np.errstate(all="ignore"):
            sol = solve_ivp(fun, (0.0, grid[-1]), y, method="LSODA", t_eval=grid, rtol=rtol, atol=rtol * ATOL_PER_RTOL)
        finite = np.all(np.isfinite(sol.y), axis=0)
        if sol.status != 0 or not np.all(finite):
            reached = sol.t[np.argmin(finite)] if not np.all(finite) else (sol.t[-1] if len(sol.t) else 0.0)
            raise diverged(reached)
        states, evaluations = np.ascontiguousarray(sol.y.T), int(sol.nfev)
    values = eps(states.T.copy(), pars=np.repeat(pars[:eps.nparams, None], len(grid), axis=1))[0]
    return Run(tuple(map(tuple, states)), tuple(values.tolist()), evaluations, time.perf_counter() - started)


_CFUNCS = {}


def _float_cfunc(compiled, which):
    key = (id(compiled), which)
    if key not in _CFUNCS:
        outputs = list(compiled.rhs) if which == "rhs" else [compiled.eps_g]
        _CFUNCS[key] = hy.cfunc(outputs, list(compiled.variables), compact_mode=True)
    return _CFUNCS[key]


# Overlaps of this size mean a finite-time blow-up: stop rather than chase it with vanishing steps.
_DIVERGED_SIZE = 1e50


def _bounded(ta):
    return bool(np.all(np.abs(ta.state.astype(float)) < _DIVERGED_SIZE))


def integrate_real(compiled, y0, params, alpha, *, bits, tol_digits, progress=None):
    """Arbitrary-precision trajectory: heyoka's Taylor method in `bits`-bit MPFR arithmetic with
    relative tolerance 10^-tol_digits; states and eps_g as mpmath.mpf."""
    started = time.perf_counter()
    real = real_number(bits)
    pars = compiled.parameter_values(params, real)
    used = max((int(str(p)[1:]) for p in hy.get_params(list(compiled.rhs))), default=-1) + 1
    ta = hy.taylor_adaptive(list(zip(compiled.variables, compiled.rhs)), [real(v) for v in y0], pars=pars[:used],
                            fp_type=hy.real, prec=bits, compact_mode=True, tol=real(Fraction(1, 10 ** tol_digits)))
    eps = hy.cfunc([compiled.eps_g], list(compiled.variables), fp_type=hy.real, prec=bits, compact_mode=True)
    eps_pars = np.array(pars[:eps.nparams])
    states, values, steps = [], [], 0
    for a in alpha:
        outcome = ta.propagate_until(real(a), callback=_bounded)
        steps += outcome[3]
        state = ta.state
        if outcome[0] != hy.taylor_outcome.time_limit:
            raise diverged(float(ta.time))
        states.append(tuple(to_mpf(v, bits) for v in state))
        values.append(to_mpf(eps(state.copy(), pars=eps_pars)[0], bits))
        if progress is not None:
            progress.update(1)
    return Run(tuple(states), tuple(values), steps, time.perf_counter() - started)


def eps_g_float(compiled, states, params):
    """eps_g (float64) at each row of `states`, row i with the system's parameter values params[i]."""
    eps = _float_cfunc(compiled, "eps")
    constants = [float_number(c) for c in compiled.constants]
    pars = np.array([[float_number(p) for p in row] + constants for row in params], dtype=float)
    ys = np.ascontiguousarray(np.array(states, dtype=float).T)
    return eps(ys, pars=np.ascontiguousarray(pars[:, :eps.nparams].T))[0]


# --- fixed points and linearisations: exact derivatives at arbitrary precision ---------------------

_REAL_CFUNCS = {}


def _jacobian_outputs(compiled):
    """(rhs, eps_g), then their Jacobian d(rhs, eps_g)/dy row by row: heyoka's exact derivatives."""
    values = list(compiled.rhs) + [compiled.eps_g]
    tensors = hy.diff_tensors(values, diff_args=list(compiled.variables), diff_order=1)
    return values + list(tensors.jacobian.flatten()), list(compiled.variables)


def _second_outputs(compiled):
    """D^2 (rhs, eps_g)(y)[u, w] = d^2/ds dr of (rhs, eps_g)(y + s u + r w) at s = r = 0: the
    second-derivative tensor contracted with u and w by heyoka's differentiation, never formed."""
    y = list(compiled.variables)
    u = [hy.expression(f"u{i}") for i in range(len(y))]
    w = [hy.expression(f"w{i}") for i in range(len(y))]
    s, r = hy.make_vars("s_", "r_")
    moved = hy.subs(list(compiled.rhs) + [compiled.eps_g], {a: a + s * b + r * c for a, b, c in zip(y, u, w)})
    tensors = hy.diff_tensors(moved, diff_args=[s, r], diff_order=2)
    mixed = [tensors[(i, [(0, 1), (1, 1)])] for i in range(len(y) + 1)]
    return hy.subs(mixed, {s: hy.expression(0.0), r: hy.expression(0.0)}), y + u + w


def _real_cfunc(compiled, which, bits):
    key = (id(compiled), which, bits)
    if key not in _REAL_CFUNCS:
        outputs, variables = (_jacobian_outputs if which == "jacobian" else _second_outputs)(compiled)
        # opt_level 0: MPFR calls gain nothing from LLVM's optimiser, which quadruples the compile time
        _REAL_CFUNCS[key] = hy.cfunc(outputs, variables, fp_type=hy.real, prec=bits, compact_mode=True,
                                     opt_level=0)
    return _REAL_CFUNCS[key]


def signed_man_exp(x):
    """(m, e) with x = m 2^e exactly, for a finite mpf (mpmath's man_exp drops the sign)."""
    x = mpmath.mpf(x)
    if not mpmath.isfinite(x):
        raise PrecisionError("a non-finite number reached the engine (the state diverged?)")
    sign, mantissa, exponent, _ = x._mpf_
    return (-1) ** sign * int(mantissa), int(exponent)


def _real_of_mpf(x, bits):
    """An mpf (at most `bits` bits) as heyoka.real, exactly: mantissa times a power of two."""
    mantissa, exponent = signed_man_exp(x)
    return hy.real(mantissa, bits) * hy.real(2, bits) ** exponent


class RealEvaluator:
    """rhs, eps_g and their exact first and second derivatives, compiled by heyoka in MPFR at
    `bits` for fixed parameter values (rounded once from exact ones); mpmath.mpf in and out."""

    def __init__(self, compiled, params, bits):
        self.compiled, self.bits, self.n = compiled, bits, len(compiled.variables)
        self.pars = compiled.parameter_values(params, real_number(bits))

    def _call(self, which, args):
        cf = _real_cfunc(self.compiled, which, self.bits)
        out = cf(np.array([_real_of_mpf(v, self.bits) for v in args]), pars=np.array(self.pars[:cf.nparams]))
        return [to_mpf(v, self.bits) for v in out]

    def values(self, y):
        """(rhs, eps_g, Jacobian of rhs as rows, gradient of eps_g) at the state y."""
        n = self.n
        out = self._call("jacobian", y)
        rows = [out[n + 1 + n * i: n + 1 + n * (i + 1)] for i in range(n + 1)]
        return out[:n], out[n], rows[:n], rows[n]

    def second(self, y, u, w):
        """(D^2 rhs(y)[u, w], D^2 eps_g(y)[u, w]) for real directions u, w."""
        out = self._call("second", list(y) + list(u) + list(w))
        return out[:self.n], out[self.n]


def first_below(compiled, y0, params, level, alpha_max):
    """(alpha, state, eps_g) where eps_g first falls below `level` before `alpha_max`, None if it does
    not: a terminal event of heyoka's float64 Taylor integrator, located on its Taylor polynomials."""
    pars = compiled.parameter_values(params, float_number)
    eps = _float_cfunc(compiled, "eps")
    value = lambda state: float(eps(np.array(state, dtype=float), pars=np.array(pars[:eps.nparams]))[0])
    y = [float_number(v) for v in y0]
    if value(y) < level:
        return 0.0, tuple(y), value(y)
    event = hy.t_event(compiled.eps_g - float(level), direction=hy.event_direction.negative)
    ta = hy.taylor_adaptive(list(zip(compiled.variables, compiled.rhs)), y, pars=pars, t_events=[event],
                            compact_mode=True)
    outcome = ta.propagate_until(float(alpha_max))[0]
    if outcome == hy.taylor_outcome.time_limit:
        return None
    if outcome != hy.taylor_outcome(-1) or not np.all(np.isfinite(ta.state)):
        raise diverged(float(ta.time))
    return float(ta.time), tuple(ta.state.tolist()), value(ta.state)


def _arb(x):
    mantissa, exponent = signed_man_exp(x)
    return flint.arb(flint.fmpz(mantissa)) * flint.arb(2) ** exponent


def _mpc(z):
    part = lambda a: mpmath.mpf(tuple(int(v) for v in a.mid().man_exp()))
    return mpmath.mpc(part(z.real), part(z.imag))


def eigensystem(rows, bits, *, vectors=False):
    """Eigenvalues of the real matrix `rows` (mpf entries, taken exactly) by descending real part,
    and with ``vectors`` the right eigenvectors as the columns of an mpmath matrix: arb's QR
    algorithm (python-flint, 'approx': no error bounds; callers verify by a rerun) at `bits`."""
    with working_precision(bits):
        matrix = flint.acb_mat([[_arb(v) for v in row] for row in rows])
        found = matrix.eig(right=True, algorithm="approx") if vectors else (matrix.eig(algorithm="approx"), None)
        values = [_mpc(e) for e in found[0]]
        if any(not mpmath.isfinite(e) for e in values):
            raise PrecisionError(f"the eigenvalues could not be found at {bits} bits")
        order = sorted(range(len(values)), key=lambda i: -mpmath.re(values[i]))
        if not vectors:
            return [values[i] for i in order]
        right = mpmath.matrix([[_mpc(found[1][j, i]) for i in order] for j in range(len(values))])
        return [values[i] for i in order], right
