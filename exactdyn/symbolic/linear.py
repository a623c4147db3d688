"""Linear networks (g(x) = x): the error hierarchy D^(l) = (J - B) Sigma^l (J - B) / N.

Derived from the K = M = 1 moment hierarchy (a linear committee with v = w = 1; the `sqrt`
convention makes wider linear networks equivalent to it, docs/model.md).  The dynamics is
dD/dalpha = A D with A = -2 eta S + eta^2 t e_1^T: S the companion matrix of the minimal
polynomial, t = (tau_2, ..., tau_{L+1}).
"""
from dataclasses import dataclass

import sympy as sp

from ..errors import ExactdynError
from .expectations import Polynomial
from .hierarchy import ETA, Structure, derive_moment


@dataclass(frozen=True)
class LinearHierarchy:
    """dD/dalpha = matrix * D, eps_g = loss_factor * D^(1); all entries sympy expressions."""

    L: int
    D: tuple
    matrix: sp.ImmutableMatrix
    companion: sp.ImmutableMatrix
    rank_one: sp.ImmutableMatrix
    eps_g: sp.Expr
    coefficients: tuple  # c_0 .. c_{L-1}
    traces: tuple        # tau_2 .. tau_{L+1}
    shifted: tuple       # monic coefficients in u = -z/(2 eta) of det(z - matrix)
    eigenvector: tuple   # D^(l)(u), an eigenvector of `matrix` at z = -2 eta u when u is a root
    u: sp.Symbol


def derive_linear(L):
    """The D-hierarchy, its companion and rank-one parts, and the shifted characteristic polynomial."""
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ExactdynError(f"L must be a whole number >= 1, got {L!r}")
    system = derive_moment(Structure(Polynomial((0, 1)), 1, 1, L))
    by_name = {str(s): s for s in (*system.states, *system.params)}
    R = [by_name[f"R{l}_1_1"] for l in range(1, L + 1)]
    Q = [by_name[f"Q{l}_1_1"] for l in range(1, L + 1)]
    T = [by_name[f"T{l}_1_1"] for l in range(1, L + 1)]
    D = sp.symbols(f"D1:{L + 1}", real=True)
    to_D = {Q[l]: D[l] + 2 * R[l] - T[l] for l in range(L)}
    dD = [sp.expand((system.rhs_of(Q[l]) - 2 * system.rhs_of(R[l])).xreplace(to_D)) for l in range(L)]
    if any(e.has(*R, *T) for e in dD):
        raise RuntimeError("the linear error hierarchy did not close in D")
    A = sp.Matrix(L, L, lambda i, j: dD[i].coeff(D[j]))
    c = tuple(by_name[f"c{j}"] for j in range(L))
    tau = tuple(by_name[f"tau{k}"] for k in range(2, L + 2))
    S = (A.applyfunc(lambda e: sp.expand(e).coeff(ETA, 1)) / (-2)).applyfunc(sp.expand)
    rank_one = A.applyfunc(lambda e: sp.expand(e).coeff(ETA, 2))
    u = sp.Symbol("u")
    vector, char = _hessenberg_eigen_polynomial(A, -2 * ETA * u)
    poly = sp.Poly(sp.expand(char), u)
    lead = poly.LC()
    shifted = tuple(sp.factor(poly.coeff_monomial(u ** j) / lead) for j in range(L))
    eps = sp.expand(system.eps_g.xreplace(to_D))
    return LinearHierarchy(L, D, sp.ImmutableMatrix(A), sp.ImmutableMatrix(S), sp.ImmutableMatrix(rank_one),
                           eps, c, tau, shifted, tuple(sp.expand(x) for x in vector), u)


def _hessenberg_eigen_polynomial(A, z):
    """For A with a non-zero superdiagonal: the vector solving rows 1..L-1 of A v = z v with v_1 = 1,
    and the last row's residual, whose roots in z are the eigenvalues of A."""
    L = A.shape[0]
    v = [sp.Integer(1)]
    for i in range(L - 1):
        rest = sum((A[i, j] * v[j] for j in range(i + 1)), sp.Integer(0))
        if any(A[i, j] != 0 for j in range(i + 2, L)):
            raise RuntimeError("matrix is not upper Hessenberg")
        v.append(sp.expand((z * v[i] - rest) / A[i, i + 1]))
    residual = sum((A[L - 1, j] * v[j] for j in range(L)), sp.Integer(0)) - z * v[L - 1]
    return v, residual


def shifted_coefficient_formula(L, c, tau, eta):
    """The shifted coefficients in closed form, for any L:
    c~_i = c_i + (eta/2) sum_{j=i+1..L} c_j tau_{j+1-i}, with c_L = 1 (checked against
    `derive_linear` in the tests).  Works with sympy, arb, fmpq or mpmath numbers; tau[k] = tau_k."""
    coeffs = list(c) + [1]
    return [coeffs[i] + eta / 2 * sum(coeffs[j] * tau[j + 1 - i] for j in range(i + 1, L + 1)) for i in range(L)]
