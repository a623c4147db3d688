"""The linear error hierarchy: companion structure, Vandermonde eigenvectors, shifted coefficients."""
import numpy as np
import pytest
import sympy as sp

from exactdyn.symbolic.hierarchy import ETA
from exactdyn.symbolic.linear import derive_linear, shifted_coefficient_formula


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_companion_has_vandermonde_eigenvectors(L):
    h = derive_linear(L)
    lam = sp.symbols(f"lambda1:{L + 1}")
    z = sp.Symbol("z")
    poly = sp.Poly(sp.Mul(*[z - x for x in lam]), z)
    S = h.companion.xreplace({c: poly.coeff_monomial(z ** j) for j, c in enumerate(h.coefficients)})
    for x in lam:
        v = sp.Matrix([x ** j for j in range(L)])
        assert (S * v - x * v).applyfunc(sp.expand) == sp.zeros(L, 1)


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_matrix_is_companion_plus_rank_one(L):
    """The derived matrix against one built here from the papers' form: S the companion matrix of
    prod (z - lambda) (ones above the diagonal, -c_j in the last row, zeros elsewhere) and t e_1^T
    (h.companion and h.rank_one are read off the matrix, so they are not what is compared)."""
    h = derive_linear(L)
    companion = sp.Matrix(L, L, lambda i, j: 1 if j == i + 1 else (-h.coefficients[j] if i == L - 1 else 0))
    rank_one = sp.Matrix(h.traces) * sp.Matrix([[1] + [0] * (L - 1)])
    expected = -2 * ETA * companion + ETA ** 2 * rank_one
    assert (h.matrix - expected).applyfunc(sp.expand) == sp.zeros(L, L)
    assert h.companion == companion and h.rank_one == rank_one
    assert h.eps_g == h.D[0] / 2


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_shifted_polynomial_is_the_characteristic_polynomial(L):
    h = derive_linear(L)
    z = sp.Symbol("z")
    char = (z * sp.eye(L) - h.matrix).det(method="berkowitz")
    shifted = sum(c * h.u ** j for j, c in enumerate(h.shifted)) + h.u ** L
    assert sp.expand(char - (-2 * ETA) ** L * shifted.xreplace({h.u: -z / (2 * ETA)})) == 0
    assert [sp.expand(c.xreplace({ETA: 0})) for c in h.shifted] == list(h.coefficients)


@pytest.mark.parametrize("L", [2, 5, 8])
def test_general_formula_matches_derivation(L):
    h = derive_linear(L)
    tau = {k: h.traces[k - 2] for k in range(2, L + 2)}
    formula = shifted_coefficient_formula(L, h.coefficients, tau, ETA)
    assert all(sp.expand(a - b) == 0 for a, b in zip(h.shifted, formula))


def test_eigenvalues_numerically():
    L, eta = 5, 0.3
    h = derive_linear(L)
    rng = np.random.default_rng(3)
    lam = np.sort(rng.uniform(0.2, 2.0, L))[::-1]
    c = np.poly(lam)[::-1][:L]
    tau = {k: np.mean(lam ** k) for k in range(2, L + 2)}
    values = {**{cj: v for cj, v in zip(h.coefficients, c)}, **{h.traces[k - 2]: tau[k] for k in tau}, ETA: eta}
    A = np.array(h.matrix.xreplace(values).evalf(), dtype=float)
    shifted = shifted_coefficient_formula(L, c, tau, eta)
    roots = np.roots([1.0] + [shifted[j] for j in range(L - 1, -1, -1)])
    assert np.allclose(np.sort_complex(np.linalg.eigvals(A)), np.sort_complex(-2 * eta * roots), rtol=1e-9)
    # each eigenvector is D^(l)(u) at its root
    for u in roots:
        vec = np.array([complex(sp.N(x.xreplace({**values, h.u: u}))) for x in h.eigenvector])
        assert np.allclose(A @ vec, -2 * eta * u * vec, rtol=1e-8, atol=1e-10)
