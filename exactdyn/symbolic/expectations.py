"""Gaussian expectations of products of an activation and its derivatives, derived in closed form.

Every expectation is first derived for *generic slots*: zero-mean jointly Gaussian variables
u_1..u_n whose covariance is a symmetric matrix of free symbols.  Instances (fields of a model)
are then obtained by substituting their covariances; two slots may stand for the same field.

- Polynomial activations: Wick/Isserlis, by the recursion E[u_a F] = sum_b C_ab E[d_b F].
- erf(x/sqrt 2): g' = sqrt(2/pi) exp(-x^2/2) is a Gaussian weight, so derivative factors are
  absorbed by tilting the covariance ("completing the square"); two remaining g factors give
  I_2, itself derived by integrating Price's theorem dI_2/dC_12 = E[g'g'] from C_12 = 0; higher
  derivatives come from Price's theorem on the diagonal, E[g''(u_a) F] = 2 dE[g(u_a) F]/dC_aa.
"""
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations_with_replacement
import re

import numpy as np
import sympy as sp

from ..errors import ExactdynError

MAX_DEGREE = 16

def slot_covariance(n):
    """Symmetric n x n matrix of free symbols C_ab (generic slot covariance)."""
    syms = {(a, b): sp.Symbol(f"C_{a}{b}", real=True)
            for a, b in combinations_with_replacement(range(1, n + 1), 2)}
    return sp.Matrix(n, n, lambda i, j: syms[(min(i, j) + 1, max(i, j) + 1)])


def isserlis(exponents, C):
    """E[prod_a u_a^{n_a}] for u ~ N(0, C), by Stein's recursion (equivalent to Wick pairings)."""
    memo = {}

    def rec(n):
        if n in memo:
            return memo[n]
        if sum(n) % 2:
            return sp.Integer(0)
        if not any(n):
            return sp.Integer(1)
        a = next(i for i, k in enumerate(n) if k)
        rest = list(n)
        rest[a] -= 1
        total = sp.Integer(0)
        for b, k in enumerate(rest):
            if k:
                lowered = list(rest)
                lowered[b] -= 1
                total += k * C[a, b] * rec(tuple(lowered))
        memo[n] = sp.expand(total)
        return memo[n]

    return rec(tuple(exponents))


class Activation:
    """An activation g; ``expectation(derivs)`` is E[prod_a g^(d_a)(u_a)] over generic slots.

    A subclass gives ``g`` (sympy), ``_derive_expectation`` and, for the simulators, ``numeric_g``
    and ``numeric_dg`` (numpy arrays in, out).  Make it known by name with register_activation."""

    name = "activation"

    def g(self, u):
        raise NotImplementedError

    def numeric_g(self, x):
        raise ExactdynError(f"activation {self.name!r} has no numeric form (define numeric_g and numeric_dg)")

    def numeric_dg(self, x):
        raise ExactdynError(f"activation {self.name!r} has no numeric form (define numeric_g and numeric_dg)")

    @property
    def cacheable(self):
        """Only the package's own classes: a user's class is not in the disk cache's source hash."""
        return type(self) in (Polynomial, Erf)

    def expectation(self, derivs):
        return _cached_expectation(self, tuple(derivs))

    def _derive_expectation(self, derivs):
        raise NotImplementedError


@lru_cache(maxsize=None)
def _cached_expectation(activation, derivs):
    return activation._derive_expectation(derivs)


@dataclass(frozen=True)
class Polynomial(Activation):
    """g(x) = sum_p coeffs[p] x^p with exact rational coefficients."""

    coeffs: tuple

    def __post_init__(self):
        from ..numbers import to_fraction

        if not isinstance(self.coeffs, (tuple, list)):
            raise ExactdynError(f"polynomial coefficients must be a tuple or list, got {type(self.coeffs).__name__}")
        if len(self.coeffs) > MAX_DEGREE + 1:
            raise ExactdynError(f"a polynomial activation has degree at most {MAX_DEGREE}, got {len(self.coeffs) - 1} "
                                "coefficients past a_0 (the derivation grows too fast with the degree)")
        coeffs = tuple(to_fraction(c, "polynomial coefficient") for c in self.coeffs)
        while len(coeffs) > 1 and coeffs[-1] == 0:
            coeffs = coeffs[:-1]
        if not coeffs or all(c == 0 for c in coeffs):
            raise ExactdynError("a polynomial activation needs a non-zero coefficient")
        if len(coeffs) == 1:
            raise ExactdynError("a constant activation has no gradient: give a polynomial of degree >= 1")
        object.__setattr__(self, "coeffs", coeffs)

    @property
    def degree(self):
        return len(self.coeffs) - 1

    @property
    def name(self):
        return registered_name(self) or "polynomial"

    def g(self, u):
        return sum(sp.Rational(c.numerator, c.denominator) * u ** p for p, c in enumerate(self.coeffs))

    @cached_property
    def _floats(self):
        coeffs = np.array([float(c) for c in self.coeffs])
        return coeffs, np.polynomial.polynomial.polyder(coeffs)

    def numeric_g(self, x):
        return np.polynomial.polynomial.polyval(x, self._floats[0])

    def numeric_dg(self, x):
        return np.polynomial.polynomial.polyval(x, self._floats[1])

    def _derive_expectation(self, derivs):
        n = len(derivs)
        u = sp.symbols(f"u1:{n + 1}", real=True)
        C = slot_covariance(n)
        product = sp.Poly(sp.Mul(*[sp.diff(self.g(u[a]), u[a], d) for a, d in enumerate(derivs)]), *u)
        return sp.expand(sum(coef * isserlis(monom, C) for monom, coef in product.terms()))


@dataclass(frozen=True)
class Erf(Activation):
    """g(x) = erf(x / sqrt 2)."""

    name = "erf"

    def g(self, u):
        return sp.erf(u / sp.sqrt(2))

    def numeric_g(self, x):
        from scipy.special import erf

        return erf(x / np.sqrt(2))

    def numeric_dg(self, x):
        return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)

    def _derive_expectation(self, derivs):
        n = len(derivs)
        C = slot_covariance(n)
        high = next((a for a, d in enumerate(derivs) if d >= 2), None)
        if high is not None:
            # Price's theorem on the diagonal: E[g^(d)(u_a) F] = 2 d/dC_aa E[g^(d-2)(u_a) F].
            lowered = list(derivs)
            lowered[high] -= 2
            return 2 * sp.diff(self._derive_expectation(tuple(lowered)), C[high, high])
        tilted = [a for a, d in enumerate(derivs) if d == 1]
        plain = [a for a, d in enumerate(derivs) if d == 0]
        if len(plain) % 2:
            return sp.Integer(0)  # g is odd
        if len(plain) > 2:
            raise ExactdynError("erf expectations with more than two undifferentiated factors have no closed form")
        if not tilted:
            return _erf_I2(C[plain[0], plain[0]], C[plain[1], plain[1]], C[plain[0], plain[1]]) if plain else sp.Integer(1)
        # Each g'(u_a) = sqrt(2/pi) exp(-u_a^2/2): integrating the weights against the density
        # gives det(I + C_AA)^(-1/2) times an expectation under C - C_.A (I + C_AA)^-1 C_A.
        C_AA = C.extract(tilted, tilted)
        weight = (2 / sp.pi) ** sp.Rational(len(tilted), 2) / sp.sqrt(sp.factor((sp.eye(len(tilted)) + C_AA).det()))
        if not plain:
            return weight
        C_BA = C.extract(plain, tilted)
        Ct = C.extract(plain, plain) - C_BA * (sp.eye(len(tilted)) + C_AA).inv() * C_BA.T
        Ct = Ct.applyfunc(sp.factor)
        return weight * _erf_I2(Ct[0, 0], Ct[1, 1], Ct[0, 1])


@lru_cache(maxsize=None)
def _erf_I2_generic():
    """I_2 = E[g(u_1) g(u_2)]: integrate Price's dI_2/dC_12 = E[g'(u_1) g'(u_2)] from C_12 = 0,
    where I_2 vanishes because g is odd."""
    s = sp.Symbol("s", real=True)
    A = sp.Symbol("A", positive=True)
    c11, c22, c12 = sp.symbols("C_11 C_22 C_12", real=True)
    # E[g'g'] = (2/pi) / sqrt(det(I + C)) = (2/pi) / sqrt(A - C_12^2), A = (1 + C_11)(1 + C_22).
    integral = sp.integrate(2 / sp.pi / sp.sqrt(A - s ** 2), (s, 0, c12))
    result = integral.subs(A, (1 + c11) * (1 + c22))
    if isinstance(result, sp.Integral) or result.has(sp.Piecewise):
        raise RuntimeError("sympy could not integrate Price's relation for I_2")
    return result, (c11, c22, c12)


def _erf_I2(c11, c22, c12):
    expr, syms = _erf_I2_generic()
    return expr.subs(dict(zip(syms, (c11, c22, c12))), simultaneous=True)


_REGISTRY = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def register_activation(name, activation):
    """Make `activation` known as `name` (CLI --activation, trajectory metadata, Problem("name", ...))."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExactdynError(f"an activation name is a lower-case identifier, got {name!r}")
    if not isinstance(activation, Activation):
        raise ExactdynError(f"register an Activation instance, got {type(activation).__name__}")
    if _REGISTRY.get(name, activation) != activation:
        raise ExactdynError(f"the activation name {name!r} is taken")
    _REGISTRY[name] = activation


def activation_names():
    return tuple(_REGISTRY)


def registered_name(activation):
    """The name `activation` is registered under, or None."""
    return next((n for n, a in _REGISTRY.items() if a == activation), None)


def activation_from_name(name):
    """The activation registered as `name` (built in: linear, quadratic, cubic, erf)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ExactdynError(f"unknown activation {str(name)[:40]!r}: choose {', '.join(_REGISTRY)} "
                            "or give polynomial coefficients")
    return _REGISTRY[name]


for _name, _activation in (("linear", Polynomial((0, 1))), ("quadratic", Polynomial((0, 0, 1))),
                           ("cubic", Polynomial((0, 0, 0, 1))), ("erf", Erf())):
    register_activation(_name, _activation)
