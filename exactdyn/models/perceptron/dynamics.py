"""The perceptron's ODEs per eigenvalue group, and their float64 solution.

Group k (eigenvalue lam_k on a fraction rho_k of the input dimensions, projector P_k) carries
r_k = J P_k B/N, q_k = J P_k J/N, t_k = B P_k B/N.  The fields x = J xi/sqrt N, y = B xi/sqrt N have
covariance [[Q, R], [R, T]] with Q = sum_k lam_k q_k, R = sum_k lam_k r_k, T = sum_k lam_k t_k.
The group fields y_k = B P_k xi/sqrt N and x_k = J P_k xi/sqrt N have covariances (lam_k r_k,
lam_k t_k) and (lam_k q_k, lam_k r_k) with (x, y); regressing them on (x, y) (Gaussian fields),
<F y_k> = (c_x, c_y) C^-1 (E1, E2), and one SGD step averaged over xi gives

    dr_k/dalpha = eta lam_k [(T r_k - R t_k) E1 + (Q t_k - R r_k) E2] / D
    dq_k/dalpha = 2 eta lam_k [(T q_k - R r_k) E1 + (Q r_k - R q_k) E2] / D + eta^2 lam_k rho_k E3

with D = QT - R^2 and E1, E2, E3 the rule's averages (rules.py, quadrature.py).  The eta^2 term
is the square of the step; xi P_k xi/N concentrates on lam_k rho_k.
"""
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
import math

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp

from ...errors import ExactdynError
from ...numbers import to_fraction
from ...spectrum import sequence
from .quadrature import check_state, fast_averages
from .rules import Q as _Q, T as _T, closed_form_averages, p as _p, rule, theta as _theta

MAX_ALPHA = 1e8
MAX_GROUPS = 4096
MAX_POINTS = 100_000
MAX_SCALE = 1e6  # eta and sigma_J: far beyond any useful value, well inside float64


@dataclass(frozen=True)
class Perceptron:
    """The model: rule name, eigenvalues and fractions (float64), learning rate, label-flip probability."""

    rule: str
    eigenvalues: tuple
    fractions: tuple
    eta: Fraction
    p_flip: Fraction = Fraction(0)
    label: str = ""

    @classmethod
    def on(cls, rule_name, spectrum, eta, p_flip=0):
        rule(rule_name)  # unknown names are refused here
        eta, p_flip = to_fraction(eta, "eta"), to_fraction(p_flip, "p_flip")
        if not 0 < eta <= MAX_SCALE:
            raise ExactdynError(f"the learning rate eta must lie in (0, {MAX_SCALE:g}], got {float(eta):g}")
        if not 0 <= p_flip < Fraction(1, 2):
            raise ExactdynError(f"the label-flip probability must lie in [0, 1/2), got {p_flip}")
        if spectrum.L > MAX_GROUPS:
            raise ExactdynError(f"at most {MAX_GROUPS} eigenvalue groups, got {spectrum.L}")
        lam, frac = spectrum.floats()
        return cls(rule_name, tuple(lam), tuple(frac), eta, p_flip, spectrum.label)

    @property
    def L(self):
        return len(self.eigenvalues)


@dataclass(frozen=True)
class State:
    """Per-group overlaps r_k, q_k, t_k (float64 arrays of length L)."""

    r: np.ndarray
    q: np.ndarray
    t: np.ndarray

    @classmethod
    def expected(cls, model, sigma_J):
        """The average draw B ~ N(0, I), J ~ N(0, sigma_J^2 I): t_k = rho_k, q_k = rho_k sigma_J^2, r_k = 0."""
        s = float(to_fraction(sigma_J, "sigma_J"))
        if not s > 0:
            raise ExactdynError("the ODE needs a student of nonzero norm at the start: give sigma_J > 0")
        if s > MAX_SCALE:
            raise ExactdynError(f"sigma_J must be at most {MAX_SCALE:g}, got {s:g}")
        rho = np.asarray(model.fractions)
        return cls(np.zeros(model.L), rho * s * s, rho.copy())


def global_overlaps(lam, r, q, t):
    """(Q, R, T) = sum_k lam_k (q_k, r_k, t_k) along the last axis."""
    return (q * lam).sum(-1), (r * lam).sum(-1), (t * lam).sum(-1)


def eps_g(Q, R, T):
    """P(sign x != sign y) = arccos(R / sqrt(QT))/pi, written with atan2 (accurate near zero error)."""
    Q, R, T = np.asarray(Q, float), np.asarray(R, float), np.asarray(T, float)
    return np.arctan2(np.sqrt(np.maximum(Q * T - R * R, 0)), R) / np.pi


_H = sp.Symbol("h", nonnegative=True)


@lru_cache(maxsize=None)
def _compiled(name):
    """float64 function (Q, T, theta, h, p) -> (E1, E2, E3) from the derived closed forms, with
    cos(theta) written as 1 - 2h, h = sin(theta/2)^2, so that 1 - cos(theta) cancels exactly."""
    forms = [sp.expand(sp.expand_trig(e).subs(sp.cos(_theta), 1 - 2 * _H)) for e in closed_form_averages(name)]
    return sp.lambdify((_Q, _T, _theta, _H, _p), forms, "numpy")


def averages(model, Q, R, T, *, panel=0.5):
    """(E1, E2, E3) in float64: closed forms where the rule has them, fast quadrature otherwise."""
    if rule(model.rule).closed_form:
        Q, R, T = check_state(Q, R, T)
        th = math.atan2(math.sqrt(Q * T - R * R), R)
        h = math.sin(th / 2) ** 2
        return tuple(float(e) for e in _compiled(model.rule)(Q, T, th, h, float(model.p_flip)))
    return fast_averages(model.rule, Q, R, T, float(model.p_flip), panel=panel)


def _step(model, r, q, t, Q, R, T, E, eta2):
    """The right-hand side at given aggregates (Q, R, T) and averages E (cheap: no quadrature)."""
    lam, rho, eta = np.asarray(model.eigenvalues), np.asarray(model.fractions), float(model.eta)
    E1, E2, E3 = E
    D = Q * T - R * R
    dr = eta * lam * ((T * r - R * t) * E1 + (Q * t - R * r) * E2) / D
    dq = 2 * eta * lam * ((T * q - R * r) * E1 + (Q * r - R * q) * E2) / D
    if eta2:
        dq = dq + eta * eta * lam * rho * E3
    return dr, dq


def rhs(model, r, q, t, *, eta2=True, panel=0.5, averages_fn=None):
    """(dr/dalpha, dq/dalpha) per group; eta2=False drops the eta^2 term (gradient-flow limit)."""
    Q, R, T = global_overlaps(np.asarray(model.eigenvalues), r, q, t)
    E = (averages_fn or averages)(model, Q, R, T, panel=panel)
    return _step(model, r, q, t, Q, R, T, E, eta2)


def jacobian(model, r, q, t, *, eta2=True, panel=0.5, averages_fn=None):
    """d(dr, dq)/d(r, q): the averages depend on the state only through Q and R, so two extra
    evaluations of them (finite differences in Q and R) and the explicit linear part suffice."""
    lam, eta = np.asarray(model.eigenvalues), float(model.eta)
    avg = averages_fn or averages
    Q, R, T = global_overlaps(lam, r, q, t)
    E = avg(model, Q, R, T, panel=panel)
    base = np.concatenate(_step(model, r, q, t, Q, R, T, E, eta2))
    D, L = Q * T - R * R, len(lam)
    jac = np.zeros((2 * L, 2 * L))
    idx = np.arange(L)
    jac[idx, idx] = eta * lam * (T * E[0] - R * E[1]) / D
    jac[L + idx, L + idx] = 2 * eta * lam * (T * E[0] - R * E[1]) / D
    jac[L + idx, idx] = 2 * eta * lam * (Q * E[1] - R * E[0]) / D
    hq, hr = 1e-7 * Q, -math.copysign(1e-7 * math.sqrt(Q * T), R)  # step away from R^2 = QT (parallel)
    for h, column, (Qh, Rh) in ((hq, L, (Q + hq, R)), (hr, 0, (Q, R + hr))):
        moved = np.concatenate(_step(model, r, q, t, Qh, Rh, T, avg(model, Qh, Rh, T, panel=panel), eta2))
        jac[:, column:column + L] += np.outer((moved - base) / h, lam)
    return jac


@dataclass(frozen=True)
class Trajectory:
    """alpha, eps_g, the norm |J|^2/N = sum_k q_k, the global overlaps, per-group r, q [alpha, k],
    and the digits of eps_g and of the norm that two integrations agree on (per point)."""

    alpha: np.ndarray
    eps_g: np.ndarray
    norm: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    r: np.ndarray
    q: np.ndarray
    t: np.ndarray
    digits: np.ndarray


def alpha_grid(alpha):
    """The times as a float64 array: a list (not a string) of finite, increasing numbers >= 0."""
    try:
        alpha = np.asarray([float(a) for a in sequence(alpha, "alpha")], float)
    except (TypeError, ValueError, OverflowError):
        raise ExactdynError("alpha must be a list of numbers") from None
    if alpha.ndim != 1 or not 1 <= len(alpha) <= MAX_POINTS:
        raise ExactdynError(f"give 1 to {MAX_POINTS} times alpha")
    if not np.all(np.isfinite(alpha)) or np.any(alpha < 0) or np.any(np.diff(alpha) <= 0):
        raise ExactdynError("alpha must be finite, >= 0 and strictly increasing")
    if alpha[-1] > MAX_ALPHA:
        raise ExactdynError(f"alpha must be at most {MAX_ALPHA:g}, got {alpha[-1]:g}")
    return alpha


def _integrate(model, state, alpha, rtol, panel, **kw):
    L = model.L

    # in the time tau = ln(1 + alpha) the late power laws take steps of even size
    def f(tau, y):
        dr, dq = rhs(model, y[:L], y[L:], state.t, panel=panel, **kw)
        return math.exp(tau) * np.concatenate([dr, dq])

    def jac(tau, y):
        return math.exp(tau) * jacobian(model, y[:L], y[L:], state.t, panel=panel, **kw)

    y0 = np.concatenate([state.r, state.q])
    taus = np.log1p(alpha)
    if taus[-1] == 0:  # every requested time is alpha = 0: nothing to integrate
        return np.repeat(state.r[None], len(alpha), 0), np.repeat(state.q[None], len(alpha), 0)
    sol = solve_ivp(f, (0.0, taus[-1]), y0, method="LSODA", t_eval=taus, rtol=rtol, jac=jac,
                    atol=1e-14 * max(1.0, y0.max()))
    if not sol.success or sol.y.shape[1] != len(alpha):
        raise ExactdynError(f"the ODE integration failed: {sol.message}")
    return sol.y[:L].T, sol.y[L:].T


def _agreement(a, b):
    with np.errstate(divide="ignore"):
        rel = np.abs(a - b) / np.abs(b)
        return np.clip(np.floor(-np.log10(np.maximum(rel, 1e-16))), 0, 15).astype(int)


def solve(model, state, alpha, *, rtol=1e-9, verify=True, **kw):
    """The trajectory at the times `alpha` (float64, LSODA).  With verify, a second integration at
    rtol/100 with a quadrature rule of half the panel width sets the digits vouched for per point."""
    alpha = alpha_grid(alpha)
    r, q = _integrate(model, state, alpha, rtol, 0.5, **kw)
    lam = np.asarray(model.eigenvalues)
    Q, R, T = global_overlaps(lam, r, q, state.t)
    eps, norm = eps_g(Q, R, T), q.sum(1)
    digits = np.zeros(len(alpha), int)  # nothing vouched for without the second run
    if verify:
        r2, q2 = _integrate(model, state, alpha, rtol / 100, 0.25, **kw)
        Q2, R2, T2 = global_overlaps(lam, r2, q2, state.t)
        digits = np.minimum(_agreement(eps, eps_g(Q2, R2, T2)), _agreement(norm, q2.sum(1)))
    return Trajectory(alpha, eps, norm, Q, R, r, q, np.asarray(state.t), digits)
