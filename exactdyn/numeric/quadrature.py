"""Numbers for the tanh and sigmoid expectations (TanhGaussian) and the ODEs that contain them.

- certified_expectation: a ball (python-flint arb) by nested ball quadrature (``acb.integral``) in
  the whitened variables z (u = L sqrt(D) z, C = L D L^T computed exactly), on the box [-T, T]^r
  with the Gaussian mass outside it bounded rigorously (|tanh^(d)| is a polynomial in tanh, at
  most the sum of its |coefficients| on the real line).  Independent blocks of the covariance
  factor out, and an odd block makes the value exactly 0.  Refused (PrecisionError) when the
  estimated number of integrand evaluations exceeds a cap, or when the ball misses the digits.
- TensorQuadrature: float64 trapezoidal rule in the same whitened variables, vectorised over all
  expectations of one number of slots.  Its accuracy is measured against the certified values
  (tests/test_quadrature.py), not assumed.
- solve_quadrature: the derived system with every TanhGaussian evaluated by TensorQuadrature, by
  scipy's LSODA; two runs (a finer grid and a 100x tighter tolerance in the second) give
  the digits verified per point.
"""
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
import math
import time

import flint
import numpy as np
from scipy.integrate import solve_ivp
import sympy as sp

from ..errors import ExactdynError, PrecisionError
from ..numbers import bits_for_digits, to_fraction, working_precision
from .certify import agreed_digits

MAX_CERTIFIED_DIGITS = 100
# Integrand evaluations a certified value may cost (~40 us each in python-flint: tens of seconds).
MAX_EVALUATIONS = 10 ** 6
# Measured: about 16 (digits + 3) evaluations per whitened dimension at unit variance (1-D, 2-D).
_EVALS_PER_DIGIT = 16
# The inner integrals on the complex balls acb.integral uses to bound its error need only be
# enclosures: capping their work keeps a 2-D value at 16 digits near 1 s (else ~20 s).
_BOUND_EVAL_LIMIT = 400


@lru_cache(maxsize=None)
def tanh_polynomial(orders):
    """Integer coefficients (ascending) of prod_{d in orders} tanh^(d) as a polynomial in t = tanh:
    tanh^(0) = t and tanh^(d+1) = (d/dt tanh^(d)) (1 - t^2)."""
    total = flint.fmpz_poly([1])
    t = flint.fmpz_poly([0, 1])
    for d in orders:
        p = t
        for _ in range(d):
            p = p.derivative() * (1 - t * t)
        total *= p
    return tuple(int(c) for c in total.coeffs())


def _fractions(cov, n):
    """The n x n covariance as Fractions, symmetric and positive semi-definite, else ExactdynError."""
    try:
        if len(cov) != n or any(len(row) != n for row in cov):
            raise TypeError
        C = [[to_fraction(cov[a][b], "a covariance") for b in range(n)] for a in range(n)]
    except TypeError:
        raise ExactdynError(f"the covariance must be a {n} x {n} matrix (one row per slot)") from None
    if any(C[a][b] != C[b][a] for a in range(n) for b in range(a)):
        raise ExactdynError("a covariance matrix must be symmetric")
    return C


def _ldl(C):
    """Exact C = L D L^T (L unit lower triangular); zero pivots give zero columns.  ExactdynError
    when C is not positive semi-definite."""
    n = len(C)
    L = [[Fraction(int(a == b)) for b in range(n)] for a in range(n)]
    D = [Fraction(0)] * n
    for j in range(n):
        D[j] = C[j][j] - sum(L[j][k] ** 2 * D[k] for k in range(j))
        if D[j] < 0:
            raise ExactdynError("a covariance matrix must be positive semi-definite")
        for i in range(j + 1, n):
            rest = C[i][j] - sum(L[i][k] * L[j][k] * D[k] for k in range(j))
            if D[j] == 0:
                if rest != 0:
                    raise ExactdynError("a covariance matrix must be positive semi-definite")
            else:
                L[i][j] = rest / D[j]
    return L, D


def _blocks(C):
    """Index sets of the independent blocks (connected by non-zero covariances)."""
    n, seen, out = len(C), set(), []
    for start in range(n):
        if start in seen:
            continue
        block, todo = [], [start]
        seen.add(start)
        while todo:
            a = todo.pop()
            block.append(a)
            for b in range(n):
                if b not in seen and C[a][b] != 0:
                    seen.add(b)
                    todo.append(b)
        out.append(sorted(block))
    return out


def _check_orders(orders):
    if not isinstance(orders, tuple) or not orders or not all(
            isinstance(o, tuple) and o and all(isinstance(d, int) and 0 <= d <= 8 for d in o) for o in orders):
        raise ExactdynError("orders must be a non-empty tuple of non-empty tuples of derivative orders 0..8")
    return orders


def certified_expectation(orders, cov, digits, *, max_evaluations=MAX_EVALUATIONS):
    """E[prod_a prod_{d in orders[a]} tanh^(d)(u_a)], u ~ N(0, cov), as an arb ball that pins down
    `digits` significant digits (plus one, so rounding cannot flip the last); cov holds exact numbers
    (a float is its binary value).  PrecisionError when the estimated cost exceeds
    `max_evaluations` integrand evaluations or the ball falls short (a value near 0)."""
    orders = _check_orders(orders)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_CERTIFIED_DIGITS:
        raise ExactdynError(f"digits must be a whole number from 1 to {MAX_CERTIFIED_DIGITS}, got {digits!r}")
    C = _fractions(cov, len(orders))
    _ldl(C)
    plans = []
    for block in _blocks(C):
        polys = [tanh_polynomial(orders[a]) for a in block]
        if sum(d + 1 for a in block for d in orders[a]) % 2:
            return flint.arb(0)  # odd under u -> -u within an independent block
        L, D = _ldl([[C[a][b] for b in block] for a in block])
        dims = [j for j, d in enumerate(D) if d != 0]
        plans.append((polys, [[L[i][j] for j in dims] for i in range(len(block))], [D[j] for j in dims]))
    rank = max(len(p[2]) for p in plans)
    spread = max([1.0] + [float(d) for p in plans for d in p[2]])
    estimate = (_EVALS_PER_DIGIT * (digits + 3) * math.sqrt(spread)) ** rank
    if estimate > max_evaluations:
        raise PrecisionError(f"certifying {digits} digits of a {rank}-dimensional tanh expectation would take about "
                             f"{estimate:.2g} integrand evaluations (limit {max_evaluations:.2g}): ask fewer digits")
    need = (digits + 1) * math.log2(10)
    with working_precision(bits_for_digits(digits + 4) + 10 * rank):
        value = flint.arb(1)
        for polys, L, D in plans:
            value *= _block_integral(polys, L, D, digits)
        if not value.is_finite() or value.rel_accuracy_bits() < need:
            got = max(0, int(value.rel_accuracy_bits() / math.log2(10)) - 1) if value.is_finite() else 0
            raise PrecisionError(f"quadrature certified {got} of the {digits} digits asked of {value.str(5)} "
                                 "(a value near 0 has no relative digits)")
        return +value


def certified_value(expr, digits, *, max_evaluations=MAX_EVALUATIONS):
    """A number-valued derived expectation (an activation's ``expectation(derivs)`` with numbers for
    its covariances): rational constants plus rational multiples of TanhGaussian, as an arb ball
    pinning `digits` significant digits, else PrecisionError."""
    from ..symbolic.quadrature_activations import TanhGaussian

    total = flint.arb(0)
    with working_precision(bits_for_digits(digits + 4)):
        for term in sp.Add.make_args(sp.expand(expr)):
            coef, rest = term.as_coeff_Mul()
            if not isinstance(coef, sp.Rational) or not (rest == 1 or isinstance(rest, TanhGaussian)):
                raise ExactdynError(f"not a number-valued tanh expectation: {str(term)[:60]}")
            ball = flint.arb(1) if rest == 1 else certified_expectation(
                rest.orders, rest.covariance().tolist(), digits + 2, max_evaluations=max_evaluations)
            total += flint.arb(int(coef.p)) / int(coef.q) * ball
    if not total.is_finite() or total.rel_accuracy_bits() < (digits + 1) * math.log2(10):
        raise PrecisionError(f"the sum certified fewer than the {digits} digits asked (cancellation)")
    return total


def _block_integral(polys, L, D, digits):
    """One independent block: the nested integral over the whitened box, plus its rigorous tail."""
    r = len(D)
    bound = math.prod(sum(abs(c) for c in p) for p in polys)
    if r == 0:
        return flint.arb(math.prod(p[0] for p in polys))  # every slot is the constant u = 0
    arb_poly = [[flint.acb(c) for c in p] for p in polys]
    scale = [flint.arb(D[j].numerator) / D[j].denominator for j in range(r)]
    A = [[flint.acb(flint.arb(L[i][j].numerator) / L[i][j].denominator * scale[j].sqrt()) for j in range(r)]
         for i in range(len(polys))]
    # |value| is at least ~1e-3 in the regimes of interest; a smaller one just fails the final check
    tail_digits = digits + 6 + math.log10(max(1, bound * r))
    T = min(40.0, math.sqrt(2 * tail_digits * math.log(10)))
    tol = flint.arb(10) ** (-(digits + 4))

    def integrand(z, analytic, depth, fixed):
        point = fixed + [z]
        weight = (-(z * z) / 2).exp()
        if depth + 1 < r:
            kw = {"eval_limit": _BOUND_EVAL_LIMIT} if analytic else {}
            return weight * flint.acb.integral(lambda w, a: integrand(w, a, depth + 1, point), -T, T,
                                               abs_tol=tol, rel_tol=tol, **kw)
        product = flint.acb(1)
        for poly, row in zip(arb_poly, A):
            u = sum((row[j] * point[j] for j in range(r)), flint.acb(0))
            t = u.tanh()
            value = flint.acb(0)
            for c in reversed(poly):
                value = value * t + c
            product *= value
        return weight * product

    raw = flint.acb.integral(lambda z, a: integrand(z, a, 0, []), -T, T, abs_tol=tol, rel_tol=tol)
    norm = (2 * flint.arb.pi()) ** (flint.arb(r) / 2)
    mass_outside = r * (flint.arb(T) / flint.arb(2).sqrt()).erfc()
    return raw.real / norm + flint.arb(0, (bound * mass_outside).upper())


# --- float64 ---------------------------------------------------------------------------------------

# The trapezoidal rule on a grid of step h in the whitened variables, cut to the ball |z| <= T: for
# an integrand analytic in a strip of half-width d about the real axes its error falls like
# exp(-2 pi d / h), and tanh(sqrt(lambda) z) has d = pi / (2 sqrt(lambda)).  (For E[tanh(u)^2] at
# variance 0.7, Gauss-Hermite needed 128 points for the 1e-16 that 58 trapezoid points reach.)
# (step h, radius T) by number of slots; the Gaussian mass outside the ball is below ~1e-11 (chi
# tail in 3 and 4 dimensions).  The check grid is finer and wider, so that the verifying run shares
# neither error with the first.
GRIDS = {1: (0.2, 8.5), 2: (0.2, 8.5), 3: (0.35, 7.5), 4: (0.35, 7.5)}
CHECK_GRIDS = {1: (0.15, 9.0), 2: (0.15, 9.0), 3: (0.27, 8.0), 4: (0.3, 8.0)}
MAX_SLOTS = 4


@lru_cache(maxsize=None)
def _grid(n, h, T):
    """Trapezoid nodes (P x n) in the ball |z| <= T, one of each pair +-z (the integrands
    are even in z: an odd one is 0 before it gets here), and their weights for N(0, I_n), doubled
    off z = 0."""
    x = np.arange(-math.floor(T / h), math.floor(T / h) + 1) * h
    mesh = np.stack(np.meshgrid(*[x] * n, indexing="ij"), -1).reshape(-1, n)
    mesh = mesh[(mesh * mesh).sum(1) <= T * T]
    origin = ~np.any(mesh, axis=1)
    leading = mesh[np.arange(len(mesh)), np.argmax(mesh != 0, axis=1)]   # first non-zero coordinate
    keep = (leading > 0) | origin
    weights = h ** n * np.exp(-(mesh * mesh).sum(1) / 2) / (2 * math.pi) ** (n / 2) * np.where(origin, 1, 2)
    return np.ascontiguousarray(mesh[keep]), np.ascontiguousarray(weights[keep])


@lru_cache(maxsize=None)
def _kernel():
    """The fused loop (numba): per distinct covariance and grid point, tanh of each slot once, then
    every pattern on that covariance, accumulated without temporaries."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def run(nodes, weights, A, which, coeffs, out):
        m, n, D = coeffs.shape
        t = np.empty(n)
        for k in range(m):
            out[k] = 0.0
        for c in range(A.shape[0]):
            for p in range(nodes.shape[0]):
                for a in range(n):
                    s = 0.0
                    for j in range(n):
                        s += A[c, a, j] * nodes[p, j]
                    t[a] = math.tanh(s)
                for k in range(m):
                    if which[k] != c:
                        continue
                    product = weights[p]
                    for a in range(n):
                        value = coeffs[k, a, D - 1]
                        for i in range(D - 2, -1, -1):
                            value = value * t[a] + coeffs[k, a, i]
                        product *= value
                    out[k] += product
    return run


class TensorQuadrature:
    """float64 values of many TanhGaussian patterns at their covariances, one fused pass per slot
    count (u = V sqrt(Lambda) z from the eigendecomposition, so a singular covariance is fine).

    ``patterns``: the orders of each expectation; call with the covariance matrices (in the same
    order) to get the values.  ``grids``: (step, radius) per slot count (GRIDS or CHECK_GRIDS)."""

    def __init__(self, patterns, grids=None):
        grids = grids or GRIDS
        self.patterns = [_check_orders(tuple(tuple(o) for o in p)) for p in patterns]
        if any(len(p) > MAX_SLOTS for p in self.patterns):
            raise ExactdynError(f"float64 quadrature takes expectations of at most {MAX_SLOTS} slots")
        self.by_size = {}
        for i, p in enumerate(self.patterns):
            self.by_size.setdefault(len(p), []).append(i)
        self.tables = {}
        for n, members in self.by_size.items():
            polys = [[tanh_polynomial(o) for o in self.patterns[i]] for i in members]
            degree = max(len(q) for row in polys for q in row)
            coeffs = np.zeros((len(members), n, degree))
            for m, row in enumerate(polys):
                for a, q in enumerate(row):
                    coeffs[m, a, :len(q)] = q
            self.tables[n] = (np.array(members), coeffs, *_grid(n, *grids[n]))

    def __call__(self, covs):
        out = np.empty(len(self.patterns))
        run = _kernel()
        for n, (members, coeffs, nodes, weights) in self.tables.items():
            C = np.stack([np.asarray(covs[i], dtype=float).reshape(n * n) for i in members])
            # expectations of one set of fields share the covariance: tanh once per distinct one
            distinct, which = np.unique(C, axis=0, return_inverse=True)
            lam, V = np.linalg.eigh(distinct.reshape(-1, n, n))
            A = np.ascontiguousarray(V * np.sqrt(np.clip(lam, 0, None))[:, None, :])
            values = np.empty(len(members))
            run(nodes, weights, A, which.ravel().astype(np.int64), coeffs, values)
            out[members] = values
        return out


def float_expectation(orders, cov, grids=None):
    """One TanhGaussian value in float64 (TensorQuadrature)."""
    orders = _check_orders(tuple(tuple(o) for o in orders))
    n = len(orders)
    try:
        cov = np.asarray(cov, dtype=float)
    except (TypeError, ValueError):
        raise ExactdynError(f"the covariance must be a {n} x {n} matrix of numbers") from None
    if cov.shape != (n, n) or not np.all(np.isfinite(cov)) or np.any(cov != cov.T) or \
            np.linalg.eigvalsh(cov)[0] < -1e-12 * max(1.0, np.abs(cov).max()):
        raise ExactdynError(f"the covariance must be a finite, symmetric, positive semi-definite {n} x {n} matrix")
    return float(TensorQuadrature([orders], grids)([cov])[0])


# --- the ODE path ----------------------------------------------------------------------------------

MAX_WIDTH = 2
MAX_GROUPS = 4
FLOAT_DIGITS = 10   # at most what the pair of runs below is asked to verify
_RTOL = 1e-10


def quadrature_nodes(expr):
    from ..symbolic.quadrature_activations import TanhGaussian

    return expr.atoms(TanhGaussian)


@dataclass(frozen=True)
class CompiledSystem:
    """A derived system lambdified once: covariances of every TanhGaussian, then rhs and eps_g."""

    patterns: tuple
    covariances: object   # (y, p) -> flat covariance entries, pattern after pattern
    sizes: tuple
    rhs: object           # (y, p, e) -> dy
    eps: object           # (y, p, e) -> eps_g


def compile_system(system):
    """Every TanhGaussian of the intermediates becomes an input e_k; the rest is lambdified."""
    sub, nodes = {}, {}
    for sym, expr in system.intermediates:
        expr = expr.xreplace(sub)
        for node in sorted(quadrature_nodes(expr), key=sp.default_sort_key):
            nodes.setdefault(node, sp.Symbol(f"quadrature_e{len(nodes)}"))
        sub[sym] = expr.xreplace(nodes)
    y, p = list(system.states), list(system.params)
    e = list(nodes.values())
    covs, sizes = [], []
    for node in nodes:
        C = node.covariance()
        sizes.append(C.shape[0])
        covs += list(C)
    return CompiledSystem(
        tuple(node.orders for node in nodes), sp.lambdify([y, p], covs, modules="numpy", cse=True), tuple(sizes),
        sp.lambdify([y, p, e], [r.xreplace(sub) for r in system.rhs], modules="numpy", cse=True),
        sp.lambdify([y, p, e], system.eps_g.xreplace(sub), modules="numpy", cse=True))


def _expectations(compiled, quadrature, y, params):
    flat = np.asarray(compiled.covariances(y, params), dtype=float)
    edges = np.cumsum([0] + [n * n for n in compiled.sizes])
    return quadrature([flat[a:b] for a, b in zip(edges[:-1], edges[1:])])


def eps_g_float(system, states, params):
    """eps_g of a derived tanh or sigmoid system at each row of float `states` and `params` (the
    finer grid's quadrature), e.g. for the states of an SGD run."""
    compiled = compile_system(system)
    quad = TensorQuadrature(compiled.patterns, CHECK_GRIDS)
    out = []
    for y, p in zip(states, params):
        y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
        out.append(float(compiled.eps(y, p, _expectations(compiled, quad, y, p))))
    return out


def _run(compiled, y0, params, grid, grids, rtol, deadline):
    quad = TensorQuadrature(compiled.patterns, grids)
    calls = [0]

    def expectations(y):
        return _expectations(compiled, quad, y, params)

    def fun(_, y):
        calls[0] += 1
        if time.perf_counter() > deadline:
            raise ExactdynError("the quadrature ODE ran past max_seconds: ask a shorter alpha range or raise it")
        return np.asarray(compiled.rhs(y, params, expectations(y)), dtype=float)

    if grid[-1] == 0:
        states = np.repeat(np.asarray(y0)[None, :], len(grid), axis=0)
    else:
        with np.errstate(all="ignore"):
            sol = solve_ivp(fun, (0.0, grid[-1]), y0, method="LSODA", t_eval=grid, rtol=rtol, atol=rtol * 1e-2)
        if sol.status != 0 or not np.all(np.isfinite(sol.y)) or sol.y.shape[1] != len(grid):
            raise ExactdynError(f"the integration failed or diverged before alpha = {grid[-1]:g} "
                                "(eta past the stability limit?)")
        states = sol.y.T
    eps = np.array([float(compiled.eps(s, params, expectations(s))) for s in states])
    return states, eps, calls[0]


def solve_quadrature(problem, system, y0, params, alphas, *, digits=None, method="auto", overlaps=False,
                     max_seconds=3600.0):
    """The float64 path of solve() for tanh and sigmoid networks: returns a Solution."""
    from ..problem import Solution, Status

    if method not in ("auto", "float64"):
        raise ExactdynError(f"{problem.activation.name} networks have the float64 quadrature path only "
                            f"(method 'auto' or 'float64'), not {method!r}")
    if digits is not None and digits > FLOAT_DIGITS:
        raise PrecisionError(f"{digits} digits are out of reach: {problem.activation.name} expectations are "
                             f"evaluated by float64 quadrature here, which verifies at most {FLOAT_DIGITS} digits")
    started = time.perf_counter()
    compiled = compile_system(system)
    grid = np.array([float(a) for a in alphas])
    y = np.array([float(v) for v in y0])
    pars = np.array([float(v) for v in params])
    deadline = started + max_seconds
    loose, eps_loose, calls_loose = _run(compiled, y, pars, grid, GRIDS, _RTOL * 100, deadline)
    tight, eps_tight, calls_tight = _run(compiled, y, pars, grid, CHECK_GRIDS, _RTOL, deadline)
    cap = digits or FLOAT_DIGITS
    counts = tuple(agreed_digits(a, b, cap) for a, b in zip(eps_loose, eps_tight))
    status = Status.OK if min(counts) >= (digits or 1) else Status.PARTIAL
    message = "" if status is Status.OK else (
        f"{sum(c < (digits or 1) for c in counts)} point(s) verified to fewer digits than asked")
    named = tuple(dict(zip(map(str, system.states), s)) for s in tight.tolist()) if overlaps else None
    return Solution(tuple(alphas), tuple(float(v) for v in eps_tight), counts, False, status, message,
                    "float64 trapezoid quadrature of the expectations, LSODA; verified by a run with a finer grid "
                    "and 100x tighter tolerance", 53, named,
                    {"seconds": time.perf_counter() - started, "rhs_evaluations": calls_loose + calls_tight})


def check_scope(problem):
    """Refuse, with the cost, what this path was not built for (it would crawl rather than fail)."""
    K, M, L = problem.K, problem.M, problem.L
    if K > MAX_WIDTH or M > MAX_WIDTH or L > MAX_GROUPS:
        fields = K + M
        points = (fields ** 4 // 4 + 1) * len(_grid(4, *GRIDS[4])[1]) * L
        raise ExactdynError(f"{problem.activation.name} networks are solved for K, M <= {MAX_WIDTH} and L <= "
                            f"{MAX_GROUPS}: K = {K}, M = {M}, L = {L} needs about {points:.2g} quadrature points "
                            "per rhs evaluation")
