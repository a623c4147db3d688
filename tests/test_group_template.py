"""derive_mode derives one generic eigenvalue group and renames it for k = 1..L; the erf closed forms
take variances as nonnegative (no Abs).  tests/test_bases.py checks the two bases symbolically for
other configurations; here the moment basis is the independent reference, numerically at 30 digits."""
import random
import re

import mpmath
import pytest
import sympy as sp

from exactdyn import Structure, basis_map, derive_mode, derive_moment
from exactdyn.symbolic.expectations import Erf, Polynomial
from exactdyn.symbolic.hierarchy import _first_order_cov, _Namer

DIGITS = 30
TOL = mpmath.mpf(10) ** -20


def _value(expr, values):
    return sp.lambdify(list(values), expr, "mpmath")(*values.values())


def _gram(vectors):
    return [[mpmath.fsum(x * y for x, y in zip(u, v)) / len(u) for v in vectors] for u in vectors]


def _random_mode_point(mode, K, M, L):
    """eta, distinct lambda_k, rho_k and overlaps of actual vectors per group, so every covariance is valid."""
    values = {mode.params[0]: mpmath.mpf("0.3")}
    for k in range(1, L + 1):
        values[sp.Symbol(f"lam{k}", real=True, positive=True)] = k + mpmath.rand() / 2
        values[sp.Symbol(f"frac{k}", real=True, positive=True)] = mpmath.rand() + mpmath.mpf(1) / 10
        g = _gram([[mpmath.rand() - mpmath.mpf(1) / 2 for _ in range(K + M + 1)] for _ in range(K + M)])
        for kind, a, b, ga, gb in ([("q", i, j, i, j) for i in range(1, K + 1) for j in range(i, K + 1)]
                                   + [("r", i, n, i, K + n) for i in range(1, K + 1) for n in range(1, M + 1)]
                                   + [("t", n, m, K + n, K + m) for n in range(1, M + 1) for m in range(n, M + 1)]):
            values[sp.Symbol(f"{kind}{k}_{a}_{b}", real=True)] = g[ga - 1][gb - 1]
    return values


def _evaluated(system, values):
    """`values` extended by the system's intermediates, in order; then its rhs and eps_g."""
    values = dict(values)
    for sym, expr in system.intermediates:
        values[sym] = _value(expr, values)
    return [_value(e, values) for e in system.rhs], _value(system.eps_g, values)


CASES = [Structure(Erf(), 2, 2, 3), Structure(Erf(), 2, 1, 2, "sqrt", "sqrt"),
         Structure(Polynomial((0, 0, 0, 1)), 2, 2, 2), Structure.named("quadratic", 2, 1, 2)]


@pytest.mark.parametrize("structure", CASES, ids=lambda s: s.key())
def test_mode_rhs_match_moment_rhs_through_basis_map(structure):
    K, M, L = structure.K, structure.M, structure.L
    mode, moment = derive_mode(structure), derive_moment(structure)
    random.seed(7)  # mpmath.rand draws from the random module
    with mpmath.workdps(DIGITS):
        point = _random_mode_point(mode, K, M, L)
        assert set(point) == set(mode.params) | set(mode.states)
        mode_rhs, mode_eps = _evaluated(mode, point)
        by_layout = dict(zip(mode.layout, mode_rhs))
        moment_point = {sym: _value(e, point) for sym, e in basis_map(structure).items()}
        moment_rhs, moment_eps = _evaluated(moment, {mode.params[0]: point[mode.params[0]], **moment_point})
        lam = [point[sp.Symbol(f"lam{k}", real=True, positive=True)] for k in range(1, L + 1)]
        for (kind, l, a, b), value in zip(moment.layout, moment_rhs):
            via_modes = mpmath.fsum(lam[k - 1] ** l * by_layout[(kind.lower(), k, a, b)] for k in range(1, L + 1))
            assert abs(value - via_modes) <= TOL * abs(via_modes), (kind, l, a, b)
        assert abs(moment_eps - mode_eps) <= TOL * abs(mode_eps)


def _rebuilt(expr):
    """`expr` built again through the evaluating constructors (canonical argument order)."""
    return expr.func(*map(_rebuilt, expr.args)) if expr.args else expr


def test_renamed_groups_are_canonical_and_closed():
    """Groups k >= 10 too: renaming keeps sympy's argument order, and no generic symbol is left."""
    for structure in (Structure(Erf(), 2, 1, 11), Structure(Polynomial((1, 0, 2, 1)), 2, 2, 10)):
        mode = derive_mode(structure)
        known = set(mode.states) | set(mode.params) | {s for s, _ in mode.intermediates}
        for rhs in mode.rhs:
            assert rhs == _rebuilt(rhs) and hash(rhs) == hash(_rebuilt(rhs))
            assert rhs.free_symbols <= known


def test_layout_at_L1024():
    K, M, L = 2, 2, 1024
    mode = derive_mode(Structure(Erf(), K, M, L))
    assert len(mode.states) == len(mode.rhs) == L * (K * M + K * (K + 1) // 2)
    assert mode.layout[:2] == (("r", 1, 1, 1), ("r", 1, 1, 2))
    assert mode.layout[-1] == ("q", L, K, K) and str(mode.states[-1]) == f"q{L}_{K}_{K}"
    assert mode.params[1] == sp.Symbol("lam1", real=True, positive=True) and str(mode.params[-1]) == f"t{L}_{M}_{M}"


def _slots(atom):
    """E_0x1_2y1 -> [(("x", 1), 0), (("y", 1), 2)]."""
    parts = [re.fullmatch(r"(\d)([xy])(\d+)", p).groups() for p in str(atom)[2:].split("_")]
    return [((f, int(i)), int(d)) for d, f, i in parts]


def _closed_form_before(atom):
    """The atom as substituted before the cleanup: slot covariances straight in, Abs and all."""
    slots = _slots(atom)
    cov = _first_order_cov(_Namer())
    sub = {sp.Symbol(f"C_{a + 1}{b + 1}", real=True): cov(slots[a][0], slots[b][0])
           for a in range(len(slots)) for b in range(a, len(slots))}
    return Erf().expectation(tuple(d for _, d in slots)).xreplace(sub)


@pytest.mark.parametrize("derive", [derive_mode, derive_moment])
def test_erf_atoms_have_no_abs_and_keep_their_value(derive):
    K, M = 2, 2
    atoms = [(s, e) for s, e in derive(Structure(Erf(), K, M, 2)).intermediates if str(s).startswith("E_")]
    assert atoms and not any(e.has(sp.Abs) for _, e in atoms)
    assert any(_closed_form_before(s).has(sp.Abs) for s, _ in atoms)   # there was something to clean
    random.seed(3)
    with mpmath.workdps(DIGITS):
        for _ in range(3):
            g = _gram([[mpmath.rand() - mpmath.mpf(1) / 2 for _ in range(K + M + 1)] for _ in range(K + M)])
            cov = _first_order_cov(_Namer())
            fields = [("x", i) for i in range(1, K + 1)] + [("y", n) for n in range(1, M + 1)]
            point = {cov(f, h): g[a][b] for a, f in enumerate(fields) for b, h in enumerate(fields)}
            for sym, expr in atoms:
                before = _value(_closed_form_before(sym), point)
                assert abs(_value(expr, point) - before) <= TOL * abs(before), sym
