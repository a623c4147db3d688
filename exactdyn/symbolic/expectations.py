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
        return type(self) in (Polynomial, Erf, Relu)

    def expectation(self, derivs):
        return _cached_expectation(self, tuple(derivs))

    def legend(self):
        """Rows (derivs, closed form over generic slots) of the LaTeX document's expectation legend."""
        return tuple((d, self.expectation(d)) for d in ((0, 0), (1, 1), (2, 0), (1, 1, 0, 0)))

    legend_note = ""   # a sentence (LaTeX) printed under the legend

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


# --- ReLU ------------------------------------------------------------------------------------------
#
# g = max(0, u) = u theta(u), g' = theta(u), g'' = delta(u).  Every expectation is one of
# E[prod_{a in D} delta(v_a) prod_{a not in D} v_a^(p_a) theta(v_a)] over distinct zero-mean Gaussian
# fields v (the factors of one field multiply: theta^2 = theta, u theta theta = u theta, u delta(u) = 0).
# Three exact steps reduce it: a delta factor conditions on v_a = 0 (the Gaussian density at 0
# times an expectation under the Schur complement); a power v_a moves off by Stein's lemma
# E[v_a F] = sum_b C_ab E[d_b F], with d theta = delta; what is left is an orthant probability
# P_m = P(v_1..v_m > 0), derived by integrating Price's theorem
# dP_m/dC_ab = E[delta(v_a) delta(v_b) prod_{c != a, b} theta(v_c)] from independent fields (P_m = 2^-m).
# P_2 and P_3 come out as sums of arcsines; P_4 is known only as a one-dimensional integral of
# arcsines, so an expectation whose reduction meets P_4 is refused.

MAX_ORTHANT = 3


class _NoClosedForm(Exception):
    pass


def _field_covariance(m):
    """Generic covariance of m distinct fields: positive variances S_aa, real covariances S_ab."""
    syms = {(a, b): sp.Symbol(f"S_{a}{b}", **({"positive": True} if a == b else {"real": True}))
            for a, b in combinations_with_replacement(range(1, m + 1), 2)}
    return sp.Matrix(m, m, lambda i, j: syms[(min(i, j) + 1, max(i, j) + 1)])


def _at(expr, C):
    """A generic expression of _field_covariance(m) at the m x m covariance matrix C."""
    m = C.shape[0]
    S = _field_covariance(m)
    return expr.xreplace({S[a, b]: C[a, b] for a in range(m) for b in range(a, m)})


@lru_cache(maxsize=None)
def _orthant(m):
    """P(v_1, ..., v_m > 0) over _field_covariance(m), by Price's theorem: from independent fields,
    raise each covariance in turn (the earlier ones at their values, the later ones at 0)."""
    if m > MAX_ORTHANT:
        raise _NoClosedForm(f"a {m}-dimensional orthant probability")
    S = _field_covariance(m)
    s = sp.Symbol("s", real=True)
    pairs = [(a, b) for a in range(m) for b in range(a + 1, m)]
    total = sp.Rational(1, 2 ** m)
    for k, (a, b) in enumerate(pairs):
        path = {S[c, d]: 0 for c, d in pairs[k + 1:]}
        path[S[a, b]] = s
        factors = tuple(("delta", 0) if c in (a, b) else ("theta", 0) for c in range(m))
        piece = sp.integrate(_relu_moment(factors, S.xreplace(path)), (s, 0, S[a, b]), manual=True)
        if piece.has(sp.Integral, sp.Piecewise):
            raise RuntimeError(f"sympy could not integrate Price's relation for P_{m}")
        total += piece
    return total


def _relu_moment(factors, C):
    """E[prod_a f_a(v_a)], v ~ N(0, C), f_a = delta for ("delta", 0), v^p theta(v) for ("theta", p)."""
    m = len(factors)
    if m == 0:
        return sp.Integer(1)
    deltas = [a for a, (kind, _) in enumerate(factors) if kind == "delta"]
    if deltas:
        rest = [a for a in range(m) if a not in deltas]
        C_DD = C.extract(deltas, deltas)
        density = 1 / ((2 * sp.pi) ** sp.Rational(len(deltas), 2) * sp.sqrt(sp.factor(C_DD.det())))
        if not rest:
            return density
        C_RD = C.extract(rest, deltas)
        conditional = (C.extract(rest, rest) - C_RD * C_DD.inv() * C_RD.T).applyfunc(sp.factor)
        return density * _relu_moment(tuple(factors[a] for a in rest), conditional)
    a = next((a for a, (_, p) in enumerate(factors) if p), None)
    if a is None:
        return _at(_orthant(m), C)
    lowered = list(factors)
    lowered[a] = ("theta", factors[a][1] - 1)
    total = sp.Integer(0)
    # d/dv (v^p theta(v)) = p v^(p-1) theta(v) + [p = 0] delta(v); the terms without a delta first,
    # so that a missing orthant probability is met before any conditioning is done
    for b in sorted(range(m), key=lambda b: lowered[b][1] == 0):
        p = lowered[b][1]
        if C[a, b] == 0:
            continue
        moved = list(lowered)
        moved[b] = ("theta", p - 1) if p else ("delta", 0)
        total += C[a, b] * max(p, 1) * _relu_moment(tuple(moved), C)
    return total


@lru_cache(maxsize=None)
def _relu_closed_form(factors):
    """_relu_moment over the generic covariance of len(factors) distinct fields."""
    return _relu_moment(factors, _field_covariance(len(factors)))


def upper_entries(C):
    """The upper triangle of a symmetric matrix, row by row (how unevaluated expectations carry C)."""
    n = C.shape[0]
    return sp.Tuple(*[C[a, b] for a in range(n) for b in range(a, n)])


def symmetric_from_upper(entries, n):
    """The symmetric n x n matrix of an upper triangle given row by row."""
    it = iter(entries)
    C = sp.zeros(n, n)
    for a in range(n):
        for b in range(a, n):
            C[a, b] = C[b, a] = next(it)
    return C


_RELU_FACTOR = {0: "g", 1: "theta", 2: "delta"}


class ReluGaussian(sp.Function):
    """E[prod_a g^(d_a)(u_a)] for g = max(0, u), u ~ N(0, C): ReluGaussian(derivs, upper triangle of C).

    Over the generic slots of slot_covariance it stays unevaluated; once the slots' covariances are
    substituted, slots that are one field (equal variances and covariance, equal covariances with
    every other slot) merge, and it evaluates to its closed form over the distinct fields, or raises
    ExactdynError where that needs an orthant probability in four or more dimensions."""

    nargs = 2

    @classmethod
    def eval(cls, derivs, cov):
        n = len(derivs)
        C = symmetric_from_upper(cov, n)
        if C == slot_covariance(n):
            return None
        fields = []   # lists of slots that are one field
        for a in range(n):
            same = next((f for f in fields if C[f[0], f[0]] == C[a, a] == C[f[0], a]
                         and all(C[f[0], c] == C[a, c] for c in range(n))), None)
            if same is None:
                fields.append([a])
            else:
                same.append(a)
        factors = []
        for slots in fields:
            orders = sorted(int(derivs[a]) for a in slots)
            if 2 in orders and len(orders) > 1:
                if orders.count(2) > 1 or 1 in orders:
                    raise ExactdynError(f"the ReLU expectation {cls.text(derivs)} multiplies delta(u) by delta(u) "
                                        "or theta(u) of one field: it is not defined")
                return sp.Integer(0)   # u delta(u) = 0
            factors.append(("delta", 0) if orders == [2] else ("theta", orders.count(0)))
        order = sorted(range(len(fields)), key=lambda f: factors[f])   # one derivation per pattern
        fields, factors = [fields[f] for f in order], [factors[f] for f in order]
        try:
            closed = _relu_closed_form(tuple(factors))
        except _NoClosedForm as e:
            raise ExactdynError(
                f"the ReLU expectation {cls.text(derivs)} over {len(fields)} distinct Gaussian fields needs {e}, "
                "for which no elementary closed form is known: ReLU committee machines are derived for "
                "K = 1 (any M) and K = 2, M = 1 (larger ones average theta(x_i) theta(x_k) g(y_n) g(y_m) "
                "in the eta^2 term)") from None
        first = [f[0] for f in fields]
        return _at(closed, C.extract(first, first))

    @staticmethod
    def text(derivs):
        return "<" + " ".join(f"{_RELU_FACTOR[int(d)]}(u_{a + 1})" for a, d in enumerate(derivs)) + ">"

    def _latex(self, printer):
        names = {0: "g", 1: r"\theta", 2: r"\delta"}
        return (r"\left\langle " + r"\,".join(f"{names[int(d)]}(u_{{{a + 1}}})" for a, d in enumerate(self.args[0]))
                + r"\right\rangle")


@dataclass(frozen=True)
class Relu(Activation):
    """g(x) = max(0, x), g' = theta(x), g'' = delta(x).

    Expectations in closed form (square roots and arcsines of the covariances) wherever their
    reduction needs orthant probabilities of at most three fields.  Supported structures: the
    committee machine's eta^2 term averages theta(x_i) theta(x_k) g(f) g(h) over fields x_i, x_k,
    f, h, at most three distinct ones for K = 1 (any M) and for K = 2, M = 1: these are derived in
    full (first order and eta^2 term, moment and eigenmode bases).  K = 2 with M >= 2 and K >= 3
    would need four-dimensional orthant probabilities (no elementary closed form known) and are
    refused with an ExactdynError naming the expectation."""

    name = "relu"
    legend_note = (r"For ReLU, $g' = \theta$ and $g'' = \delta$; factors of one field multiply first "
                   r"($\theta^2 = \theta$, $\theta\, g = g$, $g^2 = u^2\theta$, $u\,\delta(u) = 0$). The other "
                   r"patterns of the equations (with $g(u)^2$) are derived alike; the text format lists each "
                   r"expectation of the system in closed form.")

    def g(self, u):
        return sp.Max(0, u)

    def numeric_g(self, x):
        return np.maximum(x, 0.0)

    def numeric_dg(self, x):
        return np.heaviside(x, 0.0)

    def _derive_expectation(self, derivs):
        if any(d > 2 for d in derivs):
            raise ExactdynError("ReLU expectations take g, g' and g'' only (g''' = delta' is not supported)")
        return ReluGaussian(sp.Tuple(*derivs), upper_entries(slot_covariance(len(derivs))))

    def legend(self):
        # simplify (seconds, for display only) cancels the three-field forms' partial-correlation arcsines
        return tuple((d, sp.simplify(self.closed_form(d))) for d in ((0, 0), (1, 1), (2, 0), (1, 0, 0), (1, 1, 0)))

    def closed_form(self, derivs):
        """E[prod_a g^(d_a)(u_a)] over distinct generic slots (covariance slot_covariance(n))."""
        n = len(derivs)
        if any(d > 2 for d in derivs):
            raise ExactdynError("ReLU expectations take g, g' and g'' only")
        factors = tuple(("delta", 0) if d == 2 else ("theta", 1 - d) for d in derivs)
        try:
            closed = _relu_closed_form(factors)
        except _NoClosedForm as e:
            raise ExactdynError(f"the ReLU expectation {ReluGaussian.text(derivs)} needs {e}, "
                                "for which no elementary closed form is known") from None
        return _at(closed, slot_covariance(n))


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
    """The activation registered as `name` (built in: linear, quadratic, cubic, erf, relu)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ExactdynError(f"unknown activation {str(name)[:40]!r}: choose {', '.join(_REGISTRY)} "
                            "or give polynomial coefficients")
    return _REGISTRY[name]


for _name, _activation in (("linear", Polynomial((0, 1))), ("quadratic", Polynomial((0, 0, 1))),
                           ("cubic", Polynomial((0, 0, 0, 1))), ("erf", Erf()), ("relu", Relu())):
    register_activation(_name, _activation)
