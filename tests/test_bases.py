"""The moment hierarchy and the eigenmode system describe the same dynamics."""
import random

import mpmath
import pytest
import sympy as sp

from exactdyn import Structure, basis_map, derive_mode, derive_moment, power_law
from exactdyn.symbolic.expectations import Erf, Polynomial
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.numbers import working_precision


def _moment_vs_mode_difference(structure):
    moment, mode = derive_moment(structure), derive_mode(structure)
    sub = basis_map(structure)
    lam = {int(str(s)[3:]): s for s in mode.params if str(s).startswith("lam")}
    mode_rhs = dict(zip(mode.layout, mode.rhs))
    assert dict(moment.intermediates) == {a: d for a, d in mode.intermediates if str(a).startswith("E_")}
    first = dict((s, e) for s, e in mode.intermediates if not str(s).startswith("E_"))
    for (kind, l, a, b), rhs in zip(moment.layout, moment.rhs):
        via_modes = sum(lam[k] ** l * mode_rhs[(kind.lower(), k, a, b)] for k in lam)
        diff = sp.expand(rhs.xreplace(sub) - via_modes.xreplace(first).xreplace(sub))
        yield (kind, l, a, b), diff


@pytest.mark.parametrize("act,K,M", [(Erf(), 2, 2), (Polynomial((0, 1)), 1, 1), (Polynomial((0, 0, 1)), 2, 1),
                                     (Polynomial((0, 0, 0, 1)), 1, 2)])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_bases_agree_symbolically(act, K, M, L):
    structure = Structure(act, K, M, L, "sqrt", "sqrt")
    for where, diff in _moment_vs_mode_difference(structure):
        assert diff == 0, where


def _mpmath_evaluator(system):
    """(state, params) -> (rhs values, eps_g) by sympy's lambdify in mpmath (call at the working
    precision); the intermediates go in as common subexpressions, each computed once."""
    def with_intermediates(exprs):
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations=None)
        return list(system.intermediates) + replacements, reduced

    f = sp.lambdify([list(system.states), list(system.params)], [*system.rhs, system.eps_g], modules="mpmath",
                    cse=with_intermediates)
    return lambda state, params: (lambda values: (values[:-1], values[-1]))(f(state, params))


def _random_group_overlaps(L, K, M):
    """Overlaps of actual vectors (so every covariance is valid), in mpmath at the working precision."""
    rnd = mpmath.rand
    m = 3
    J = [[[mpmath.mpf(rnd()) - mpmath.mpf(1) / 2 for _ in range(m)] for _ in range(K)] for _ in range(L)]
    B = [[[mpmath.mpf(rnd()) - mpmath.mpf(1) / 2 for _ in range(m)] for _ in range(M)] for _ in range(L)]
    dot = lambda u, v: mpmath.fsum(x * y for x, y in zip(u, v)) / m
    r = [[[dot(J[k][i], B[k][n]) for n in range(M)] for i in range(K)] for k in range(L)]
    q = [[[dot(J[k][i], J[k][j]) for j in range(K)] for i in range(K)] for k in range(L)]
    t = [[[dot(B[k][n], B[k][p]) for p in range(M)] for n in range(M)] for k in range(L)]
    return r, q, t


@pytest.mark.slow
def test_bases_agree_numerically_at_50_digits_L12():
    L, K, M = 12, 2, 2
    structure = Structure(Erf(), K, M, L)
    moment, mode = derive_moment(structure), derive_mode(structure)
    spec = power_law(L, 1)
    fm, fe = _mpmath_evaluator(moment), _mpmath_evaluator(mode)
    with working_precision(600):
        random.seed(12)  # mpmath.rand draws from the random module
        to_mpf = lambda q: mpmath.mpf(int(q.p)) / int(q.q)
        lam = [to_mpf(x) for x in spec.eigenvalues]
        frac = [to_mpf(x) for x in spec.weights]
        c = [to_mpf(x) for x in spec.coefficients()]
        r, q, t = _random_group_overlaps(L, K, M)
        table = overlap_table(lam, frac, r, q, t, mpmath.mpf("0.3"), c)
        rhs_moment, eps_m = fm(*assign(moment, table))
        rhs_mode, eps_e = fe(*assign(mode, table))
        d_moment, d_mode = dict(zip(moment.layout, rhs_moment)), dict(zip(mode.layout, rhs_mode))
        gate = lambda x, y: abs(x - y) <= mpmath.mpf(10) ** -50 * abs(y)
        off = list(lam)
        off[0] *= 1 + mpmath.mpf(10) ** -45  # planted: one eigenvalue of the map 45 digits off
        planted_caught = False
        for (kind, l, a, b), value in d_moment.items():
            via_modes = mpmath.fsum(lam[k - 1] ** l * d_mode[(kind.lower(), k, a, b)] for k in range(1, L + 1))
            assert gate(value, via_modes), (kind, l, a, b)
            planted = mpmath.fsum(off[k - 1] ** l * d_mode[(kind.lower(), k, a, b)] for k in range(1, L + 1))
            planted_caught |= not gate(value, planted)
        assert gate(eps_m, eps_e) and planted_caught
