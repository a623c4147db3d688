"""float64 integration of the eigenmode systems: one group compiled, BDF with the exact Jacobian.

Every eigenvalue group k obeys the same equations in its own symbols (``ODESystem.groups``) and
the groups are coupled only through a few aggregates, the first-order overlaps Q^(1), R^(1),
T^(1) (sums over the groups, linear in the states).  So one group's rhs and its exact Jacobian are
compiled (heyoka ``cfunc``) and evaluated for all L groups in one batched call, and the aggregates
join the state: the Jacobian becomes an arrowhead (L diagonal blocks and a border) that a sparse
LU factors in O(L).  The systems are stiff (rates from eta*lambda_1 down to eta*lambda_L): scipy's
BDF with this Jacobian takes erf K = M = 2, L = 256 to alpha = 10^4 in seconds, where LSODA with
a dense finite-difference Jacobian did not finish in 20 minutes (bench/bench_engine.py).

d(aggregates)/d(alpha) is the same linear map of the groups' rhs, so every step of a BDF method
keeps the aggregates equal to the sums of the states up to rounding (a linear invariant).
"""
from dataclasses import dataclass
import time

import heyoka as hy
import numpy as np
import scipy.sparse as sps
from scipy.integrate import BDF
import sympy as sp

from ..errors import ExactdynError
from . import engine
from .engine import Converter, Run, diverged, float_number

# Absolute tolerance relative to rtol.  Near 1e-16, Newton chases rounding in the components that
# cross zero: erf K = M = 2, L = 256 to alpha = 10^4 at rtol 1e-13 took 57 s with atol 1e-16 and
# 3.6 s with 1e-15, within 2e-10 of a Radau run at rtol 1e-13 (bench/bench_engine.py).
ATOL_PER_RTOL = 1e-2
# Steps that collapse where every rate is below this (relative to the state) are a stall at the
# rounding floor; anywhere else, a blow-up (which BDF meets at moderate states: 13 for a cubic net).
_SETTLED = 1e-8


@dataclass(frozen=True)
class GroupForm:
    """One group's compiled equations and where each group's numbers sit in the system's lists.

    ``states[k]`` and ``own[k]``: indices of group k's states in ``system.states`` and of its own
    parameters in ``system.params``; ``shared``: the parameters common to all groups;
    ``group``: (x_k, g) -> rhs_k and d rhs_k / d(x_k, g) row by row; ``share``: x_k -> group k's
    terms of the aggregates and their derivative; ``eps``: g -> eps_g."""

    states: np.ndarray
    own: np.ndarray
    shared: tuple
    aggregates: int
    group: object
    share: object
    eps: object
    constants: tuple


# rtol of the verified pair's tight run: BDF's global error falls slowly with rtol, 1e-13 gives
# ~10 digits at L = 64; LSODA's is 1e-12.
BDF_RTOL, LSODA_RTOL = 1e-13, 1e-12
# Below this many states LSODA's dense linear algebra is cheap and its Fortran loop beats scipy's
# Python BDF (erf K = M = 2 to alpha = 1000: L = 16, 112 states, 0.63 s vs 2.1 s; L = 24, 168
# states, 30 s vs 9 s; bench/bench_engine.py)
GROUPED_FROM_STATES = 150
BDF_ROUTE = "BDF on one compiled eigenvalue group with its exact sparse Jacobian"
LSODA_ROUTE = "LSODA on the compiled rhs"


def integrate_float64(system, y0, params, alpha, *, looser=1):
    """(Run, route): the float64 trajectory of any derived system at `looser` times the default
    rtol, by BDF on the grouped form from GROUPED_FROM_STATES states on, else (or when BDF stalls
    at the rounding floor) by LSODA on the whole compiled rhs."""
    form = group_form(system) if len(system.states) >= GROUPED_FROM_STATES else None
    if form is not None:
        try:
            return integrate_groups(form, y0, params, alpha, rtol=BDF_RTOL * looser), BDF_ROUTE
        except Stalled:
            pass  # at the rounding floor LSODA's error test still steps on
    compiled = engine.compile_system(system)
    return engine.integrate_float(compiled, y0, params, alpha, rtol=LSODA_RTOL * looser), LSODA_ROUTE


class Stalled(ExactdynError):
    """BDF's step collapsed where the state no longer moves: the trajectory reached the rounding
    floor (a student equal to its teacher to ~1e-15, say), where BDF's error estimate is noise."""


_FORMS = {}


def group_form(system):
    """The GroupForm of `system`, None when it has no groups or its coupling is not of that shape."""
    if not system.groups:
        return None
    hit = _FORMS.get(id(system))
    if hit is not None and hit[0] is system:
        return hit[1]
    form = _build(system)
    _FORMS[id(system)] = (system, form)
    return form


def _split(system):
    """(group-1 state indices, aggregates as (symbol, group 1's terms)) or None."""
    states = [[] for _ in system.groups]
    for i, name in enumerate(system.layout):  # name = (kind, group k = 1..L, a, b)
        states[name[1] - 1].append(i)
    xs = [system.states[i] for i in states[0]]
    own_states = set(xs)
    first = own_states | {system.params[i] for i in system.groups[0]}
    grouped = set(system.states) | {system.params[i] for row in system.groups for i in row}
    aggregates = []
    for sym, value in system.intermediates:
        if not value.free_symbols & grouped:
            continue  # a function of the aggregates alone
        terms = [t for t in sp.Add.make_args(value) if t.free_symbols & grouped <= first]
        share = sp.Add(*terms)
        if any(share.diff(x).free_symbols & own_states for x in xs):
            return None  # not linear in the states: no constant map to the aggregates
        aggregates.append((sym, share))
    return states, aggregates


def _build(system):
    split = _split(system)
    if split is None:
        return None
    states, aggregates = split
    in_groups = {i for row in system.groups for i in row}
    own, shared = system.groups[0], [i for i in range(len(system.params)) if i not in in_groups]
    x = [hy.expression(f"x{i}") for i in range(len(states[0]))]
    g = [hy.expression(f"g{j}") for j in range(len(aggregates))]
    symbols = {system.states[i]: v for i, v in zip(states[0], x)}
    symbols.update({system.params[i]: hy.par[j] for j, i in enumerate([*own, *shared])})
    symbols.update({sym: v for (sym, _), v in zip(aggregates, g)})
    conv = Converter(symbols, len(own) + len(shared))
    share = [conv(terms) for _, terms in aggregates]
    for sym, value in system.intermediates:
        if sym not in conv.known:
            conv.known[sym] = conv(value)
    rhs = [conv(system.rhs[i]) for i in states[0]]
    jacobian = hy.diff_tensors(rhs, diff_args=x + g, diff_order=1).jacobian
    weights = hy.diff_tensors(share, diff_args=x, diff_order=1).jacobian if share else np.zeros((0, len(x)))
    group = hy.cfunc(rhs + list(jacobian.flatten()), x + g, compact_mode=True)
    share_fn = hy.cfunc(share + list(np.asarray(weights).flatten()), x, compact_mode=True)
    eps = hy.cfunc([conv(system.eps_g)], g, compact_mode=True)
    return GroupForm(np.array(states), np.array(system.groups), tuple(shared), len(aggregates), group, share_fn, eps,
                     tuple(conv.constants))


class _Arrowhead:
    """rhs and sparse Jacobian of the groups plus aggregates, for one set of parameter values."""

    def __init__(self, form, params):
        self.form = form
        L, s = form.states.shape
        m = form.aggregates
        self.L, self.s, self.m, self.n = L, s, m, L * s
        values = [float_number(p) for p in params]
        constants = [float_number(c) for c in form.constants]
        pars = np.array([[values[i] for i in row] + [values[i] for i in form.shared] + constants for row in form.own])
        self.pars = np.ascontiguousarray(pars.T)
        out = form.share(np.zeros((s, L)), pars=self.pars[:form.share.nparams])
        self.offset = out[:m].sum(axis=1)                        # aggregates at zero states (teacher's T)
        self.weights = np.ascontiguousarray(out[m:].T.reshape(L, m, s))
        self.rows, self.cols = self._pattern()
        self.rhs_calls = 0

    def aggregates(self, groups):
        return self.offset + np.einsum("kms,ks->m", self.weights, groups)

    def _pattern(self):
        L, s, m, n = self.L, self.s, self.m, self.n
        k, a, b = np.meshgrid(np.arange(L), np.arange(s), np.arange(s + m), indexing="ij")
        top_r = (k * s + a).ravel()
        top_c = np.where(b < s, k * s + b, n + b - s).ravel()
        j, col = np.meshgrid(np.arange(m), np.arange(n + m), indexing="ij")
        return np.concatenate([top_r, (n + j).ravel()]), np.concatenate([top_c, col.ravel()])

    def _evaluate(self, y):
        s, m = self.s, self.m
        inputs = np.empty((s + m, self.L))
        inputs[:s] = y[:self.n].reshape(self.L, s).T
        inputs[s:] = y[self.n:, None]
        return self.form.group(inputs, pars=self.pars[:self.form.group.nparams])

    def rhs(self, _, y):
        self.rhs_calls += 1
        change = self._evaluate(y)[:self.s].T
        return np.concatenate([change.ravel(), np.einsum("kms,ks->m", self.weights, change)])

    def jacobian(self, _, y):
        s, m = self.s, self.m
        blocks = self._evaluate(y)[s:].T.reshape(self.L, s, s + m)
        border = np.einsum("kms,kst->mkt", self.weights, blocks)   # d(aggregates)'/d(x_k, g), summed over k for g
        bottom = np.concatenate([border[:, :, :s].reshape(m, self.n), border[:, :, s:].sum(axis=1)], axis=1)
        values = np.concatenate([blocks.ravel(), bottom.ravel()])
        return sps.csc_matrix((values, (self.rows, self.cols)), shape=(self.n + m, self.n + m))


def integrate_groups(form, y0, params, alpha, *, rtol):
    """float64 trajectory of a grouped system by BDF with the exact sparse Jacobian; the states in
    the system's order and eps_g at each alpha.  A stall at the rounding floor is retried with a
    100x and then a 10^4 x larger absolute tolerance (the states there are noise below it anyway)."""
    started = time.perf_counter()
    system = _Arrowhead(form, params)
    grid = np.array([float(a) for a in alpha])
    start = np.array([float_number(v) for v in y0])
    groups = start[form.states]
    y = np.concatenate([groups.ravel(), system.aggregates(groups)])
    for atol in (rtol * ATOL_PER_RTOL * 100 ** i for i in range(3)):
        try:
            path = _bdf(system, y, grid, rtol, atol)
            break
        except Stalled as stalled:
            last = stalled
    else:
        raise last
    states = np.empty((len(grid), len(start)))
    states[:, form.states.ravel()] = path[:system.n].T
    eps = form.eps(np.ascontiguousarray(path[system.n:]),
                   pars=np.repeat(system.pars[:form.eps.nparams, :1], len(grid), axis=1))[0]
    return Run(tuple(map(tuple, states)), tuple(eps.tolist()), system.rhs_calls, time.perf_counter() - started)


def _bdf(system, y, grid, rtol, atol):
    """The states at each alpha of `grid` (columns), stepping scipy's BDF and reading its dense output."""
    out = np.empty((len(y), len(grid)))
    done = int(np.searchsorted(grid, 0.0, side="right"))
    out[:, :done] = y[:, None]
    if done == len(grid):
        return out
    solver = BDF(system.rhs, 0.0, y, grid[-1], rtol=rtol, atol=atol, jac=system.jacobian)
    with np.errstate(all="ignore"):
        while done < len(grid):
            solver.step()
            if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
                if _settled(system, solver):
                    raise Stalled(f"BDF stalled at alpha = {solver.t:.6g}")
                raise diverged(solver.t)
            dense = solver.dense_output()
            while done < len(grid) and grid[done] <= solver.t:
                out[:, done] = dense(grid[done])
                done += 1
    return out


def _settled(system, solver):
    size = max(1.0, float(np.abs(solver.y).max()))
    return bool(np.all(np.isfinite(solver.y)) and np.abs(system.rhs(solver.t, solver.y)).max() <= _SETTLED * size)
