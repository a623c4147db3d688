"""The averages E1 = <F x>, E2 = <F y>, E3 = <F^2> of any rule by one-dimensional quadrature.

Conditioning the teacher field on the student's, y | x ~ N(m, v) with m = R x/Q, v = T - R^2/Q,
turns each average over the half plane y > 0 into an integral over x alone:

    <Theta(y) h(x)>   = int phi_Q(x) h(x) P(x) dx,  P = Phi(m/sqrt v)
    <Theta(y) y h(x)> = int phi_Q(x) h(x) M(x) dx,  M = m Phi(m/sqrt v) + sqrt(v) phi(m/sqrt v)

(phi_Q the N(0, Q) density).  Twice these, summed over the label s = +-1 with weights 1 - p and p,
give E1, E2, E3 (the joint flip (x, y, s) -> -(x, y, s) leaves every integrand unchanged).  Each
side of x = 0 is integrated separately, so the rules' jumps there cost nothing.

`certified_averages` integrates with arb balls (acb.integral, rigorous error bounds) plus a bound
on the Gaussian tails beyond |x| = X; `fast_averages` is a float64 rule (Gauss-Legendre panels in
t with x = a sinh t, which resolves the scales a, sqrt(Q) and the width of Phi together).
"""
from functools import lru_cache
import math

import flint
import numpy as np
import sympy as sp
from scipy.special import ndtr

from ...errors import ExactdynError, PrecisionError
from ...numbers import bits_for_digits, to_fmpq, to_fraction, working_precision
from .rules import rule, x as _x

MAX_DIGITS = 60
_SQRT_2PI = math.sqrt(2 * math.pi)


def check_state(Q, R, T):
    """Q, R, T as floats, refused unless they are the covariances of two non-parallel fields."""
    Q, R, T = float(Q), float(R), float(T)
    if not all(math.isfinite(v) for v in (Q, R, T)) or Q <= 0 or T <= 0:
        raise ExactdynError(f"the fields need Q > 0 and T > 0 (finite), got Q = {Q}, T = {T}")
    if not Q * T - R * R > 0:
        raise ExactdynError("student and teacher are parallel to float64 precision (R^2 >= QT; eps_g below ~1e-5?): "
                            "the averages are singular there")
    return Q, R, T


@lru_cache(maxsize=None)
def _numeric_pieces(name):
    ru = rule(name)
    # exp clipped below overflow: exp(x)/(exp(x) + 1) stays 1 for large x instead of inf/inf
    modules = [{"exp": lambda u: np.exp(np.minimum(u, 700.0))}, "numpy"]
    return tuple((s, side, sp.lambdify(_x, expr, modules)) for s, _, side, expr in ru.pieces())


@lru_cache(maxsize=None)
def _nodes(order):
    return np.polynomial.legendre.leggauss(order)


def _grid(Q, R, T, panel, order):
    """Nodes t >= 0 and weights of x = a sinh(t) on [0, X], X = 12 sqrt(Q)."""
    v = T - R * R / Q
    width = math.sqrt(v) * Q / abs(R) if R else math.inf  # Phi(m / sqrt v) turns over on this scale of x
    a = 0.5 * min(1.0, math.sqrt(Q), width)
    t_max = math.asinh(12 * math.sqrt(Q) / a)
    panels = max(1, math.ceil(t_max / panel))
    u, w = _nodes(order)
    edges = np.linspace(0, t_max, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2
    t = ((edges[:-1] + edges[1:])[:, None] / 2 + half * u).ravel()
    wt = (half * w).ravel()
    return a * np.sinh(t), wt * a * np.cosh(t)


def _check_flip(p_flip):
    """The flip probability as a float in [0, 1]: the tail bounds assume label weights that sum to 1."""
    value = float(to_fraction(p_flip, "p_flip"))
    if not 0 <= value <= 1:
        raise ExactdynError(f"p_flip must lie in [0, 1], got {p_flip}")
    return value


def fast_averages(name, Q, R, T, p_flip=0.0, *, panel=0.5, order=8):
    """(E1, E2, E3) in float64; `panel` and `order` set the rule (halve panel to check it)."""
    Q, R, T = check_state(Q, R, T)
    p_flip = _check_flip(p_flip)
    xs, ws = _grid(Q, R, T, panel, order)
    xx, ww = np.concatenate([-xs, xs]), np.concatenate([ws, ws])
    v = T - R * R / Q
    dens = ww * np.exp(-xx * xx / (2 * Q)) / math.sqrt(2 * math.pi * Q)
    m = R * xx / Q
    z = m / math.sqrt(v)
    P = ndtr(z)
    M = m * P + math.sqrt(v) * np.exp(-z * z / 2) / _SQRT_2PI
    n = len(xs)
    F = np.zeros_like(xx)
    FF = np.zeros_like(xx)
    for s, side, f in _numeric_pieces(name):
        weight = 1 - p_flip if s == 1 else p_flip
        if weight == 0:
            continue
        part = slice(0, n) if side < 0 else slice(n, 2 * n)
        value = np.broadcast_to(np.asarray(f(xx[part]), float), (n,))
        F[part] += weight * value
        FF[part] += weight * value * value
    return (2 * float(np.dot(dens * P, xx * F)), 2 * float(np.dot(dens * M, F)), 2 * float(np.dot(dens * P, FF)))


@lru_cache(maxsize=None)
def _ball_pieces(name):
    ru = rule(name)
    return tuple((s, side, sp.lambdify(_x, expr, modules=[{"exp": lambda z: z.exp()}]))
                 for s, _, side, expr in ru.pieces())


def _tail_bound(Q, R, T, z):
    """Bound on the integrands' mass beyond |x| = z sqrt(Q), using |F| <= 1 + |x| (true of every
    rule here) and int_z^oo t^k phi(t) dt <= 2 z^k exp(-z^2/2)/sqrt(2 pi) for z >= 3, k <= 4."""
    moment = lambda k: Q ** (k / 2) * 2 * z ** k * math.exp(-z * z / 2) / _SQRT_2PI
    v = T - R * R / Q
    c1, c0 = abs(R) / Q, math.sqrt(v) / _SQRT_2PI
    bounds = (moment(1) + moment(2),                                   # |x F|
              c0 * moment(0) + (c0 + c1) * moment(1) + c1 * moment(2),  # |F| |M|
              moment(0) + 2 * moment(1) + moment(2))                   # F^2
    return [2 * 2 * b * 2 for b in bounds]  # both tails, the factor 2, a margin of 2


def certified_averages(name, Q, R, T, p_flip=0, *, digits=20):
    """(E1, E2, E3) as arb balls with at least `digits` correct digits each, else PrecisionError.

    Q, R, T, p_flip are read as exact numbers (floats as their exact binary value)."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise ExactdynError(f"digits must be a whole number from 1 to {MAX_DIGITS}, got {digits!r}")
    check_state(Q, R, T)
    _check_flip(p_flip)
    prec = bits_for_digits(digits) + 20
    z = max(3.0, math.sqrt(2 * (digits + 10) * math.log(10) + 4 * math.log(1 + Q)))
    tails = _tail_bound(float(Q), float(R), float(T), z)
    with working_precision(prec):
        Qb, Rb, Tb, pb = (v if isinstance(v, flint.arb) else flint.arb(to_fmpq(v, "an overlap"))
                          for v in (Q, R, T, p_flip))
        v = Tb - Rb * Rb / Qb
        sv = v.sqrt()
        X = flint.arb(z) * Qb.sqrt()
        norm = 1 / (2 * flint.arb.pi() * Qb).sqrt()
        inv_sqrt2, inv_sqrt2pi = 1 / flint.arb(2).sqrt(), 1 / (2 * flint.arb.pi()).sqrt()
        total = [flint.arb(0)] * 3
        for s, side, f in _ball_pieces(name):
            weight = 1 - pb if s == 1 else pb
            for k in range(3):
                def integrand(xx, _, k=k):
                    dens = norm * (-xx * xx / (2 * Qb)).exp()
                    m = Rb * xx / Qb
                    zz = m / sv
                    P = (1 + (zz * inv_sqrt2).erf()) / 2
                    F = f(xx) + 0 * xx  # constants become balls
                    if k == 0:
                        return dens * xx * F * P
                    if k == 1:
                        return dens * F * (m * P + sv * inv_sqrt2pi * (-zz * zz / 2).exp())
                    return dens * F * F * P
                lo, hi = (-X, flint.arb(0)) if side < 0 else (flint.arb(0), X)
                value = flint.acb.integral(integrand, lo, hi, rel_tol=flint.arb(2) ** (-prec + 10))
                total[k] += 2 * weight * value.real
        out = tuple(t + flint.arb(0, tails[k]) for k, t in enumerate(total))
        for e in out:
            if not e.is_finite() or (not e.contains(0) and e.rel_accuracy_bits() < (digits + 1) * math.log2(10)):
                raise PrecisionError(f"quadrature reached only {max(0, e.rel_accuracy_bits()) / math.log2(10):.0f} "
                                     f"of the {digits} digits asked for")
            if e.contains(0) and e.rad() > flint.arb(10) ** (-digits - 1):
                raise PrecisionError(f"an average could not be separated from zero at {digits} digits")
    return out
