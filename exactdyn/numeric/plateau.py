"""The symmetric plateau of a committee machine: fixed point, linearisation, escape rate.

On the plateau every student unit is the same: r^k_in = x_kn, q^k_ii = y_k, q^k_ij = z_k (i != j),
for any teacher overlaps t^k.  That subspace is invariant; inside it the plateau is a fixed point,
found by Newton's method on the derived eigenmode system compiled by the engine, with its exact
Jacobian (heyoka's derivatives, evaluated in MPFR); the spectrum, the teacher and eta go in exact
and are rounded once, at the working precision.  The papers' uniform-teacher, first-order-in-eta
approximation is `approximate_plateau`.  The Jacobian in the full state space has positive
eigenvalues along the symmetry-breaking directions: the largest is the escape rate, and a
deviation d0 from the plateau needs about ln(1/d0)/rate to grow to order one.

Every value is *verified*: the whole solve runs twice, at the working precision and at 64 more
bits, and each value carries the digits on which the two runs agree (docs/model.md section 4).
"""
from dataclasses import dataclass, replace
from fractions import Fraction

import mpmath
import numpy as np

from ..errors import ExactdynError, PrecisionError
from ..numbers import bits_for_digits, to_fraction, working_precision
from ..problem import InitialState, Problem, exact, gram_lowest
from ..symbolic.cache import derive
from . import engine, grouped
from .certify import agreed_digits
from .overlaps import assign, overlap_table

CHECK_BITS = 64
MAX_NEWTON = 60


@dataclass(frozen=True)
class Plateau:
    """Fixed point (per group: x_k = (r^k_in)_n, one value per teacher n; y_k = q^k_ii; z_k = q^k_ij),
    eps_g there, the Jacobian's eigenvalues (descending real parts), the escape rate (largest real
    part), as mpf/mpc; ``*_digits`` are the verified digits of each value (at most ``digits``, the
    digits asked).  ``approximation`` names what was left out, if anything."""

    x: tuple
    y: tuple
    z: tuple
    eps_g: object
    eigenvalues: tuple
    escape_rate: object
    digits: int
    bits: int
    residual: object
    approximation: str = "none"
    x_digits: tuple = ()
    y_digits: tuple = ()
    z_digits: tuple = ()
    eps_g_digits: int = 0
    eigenvalue_digits: tuple = ()
    escape_rate_digits: int = 0

    def escape_time(self, deviation):
        """alpha for a symmetry-breaking deviation `deviation` to grow by 1/deviation (to order one);
        it carries the escape rate's digits."""
        d = to_fraction(deviation, "deviation")
        if not 0 < d < 1:
            raise ExactdynError(f"the deviation must lie between 0 and 1, got {deviation}")
        with mpmath.workprec(self.bits):
            return mpmath.log(mpmath.mpf(d.denominator) / d.numerator) / self.escape_rate


def uniform_teacher(teacher):
    """The papers' plateau approximation of the teacher overlaps, exactly: in each group every
    diagonal entry becomes the mean diagonal and every off-diagonal entry the mean off-diagonal."""
    out = []
    for t in teacher:
        M = len(t)
        diagonal = sum((t[n][n] for n in range(M)), Fraction(0)) / M
        off = sum((t[n][m] for n in range(M) for m in range(M) if n != m), Fraction(0)) / (M * M - M) if M > 1 else 0
        out.append(tuple(tuple(diagonal if n == m else off for m in range(M)) for n in range(M)))
    return tuple(out)


def teacher_overlaps(problem, teacher):
    """Exact, checked teacher overlaps t^k (L symmetric M x M matrices); default rho_k I."""
    if teacher is None:
        return InitialState.expected(problem, perturbation=0).t
    L, M = problem.L, problem.M
    shape_ok = isinstance(teacher, (list, tuple)) and len(teacher) == L and all(
        isinstance(t, (list, tuple)) and len(t) == M and all(len(row) == M for row in t) for t in teacher)
    if not shape_ok:
        raise ExactdynError(f"give the teacher overlaps as {L} matrices of size {M} x {M}")
    out = tuple(tuple(tuple(exact(v) for v in row) for row in t) for t in teacher)
    if any(t[n][m] != t[m][n] for t in out for n in range(M) for m in range(n)):
        raise ExactdynError("the teacher overlaps t^k must be symmetric")
    for k, t in enumerate(out, 1):  # overlaps of real teacher vectors: a Gram matrix
        lowest = gram_lowest([[float(v) for v in row] for row in t])
        if lowest is not None:
            raise ExactdynError(f"the teacher overlaps t^{k} are not those of real vectors (eigenvalue {lowest:.3g} "
                                "< 0: not positive semi-definite)")
    return out


def _layout(system, M, tied=False):
    """(reduced index of each state, the states whose rhs form the reduced equations): per group k
    the reduced unknowns are x_k1..x_kM, y_k, z_k; ``tied``: z_k = y_k (identical students), one
    unknown and one equation fewer per group."""
    width = M + 1 if tied else M + 2
    expand, rows = [], {}
    for j, (kind, k, a, b) in enumerate(system.layout):
        base = width * (k - 1)
        index = base + b - 1 if kind == "r" else base + (M if a == b or tied else M + 1)
        expand.append(index)
        if a == 1 and (kind == "r" or b == 1 or (b == 2 and not tied)):
            rows[index] = j
    return expand, [rows[i] for i in range(len(rows))]


def _params(problem, system, teacher, r, q, eta):
    spec = problem.spectrum
    table = overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights], r, q, teacher, eta)
    return assign(system, table)


def _guess(problem, system, teacher, guess_alpha):
    """A float64 start for Newton: alike students (r = rho/100, q = rho I/10) stay alike and settle
    on the plateau.  Only the start: Newton's root does not depend on its digits."""
    K, M = problem.K, problem.M
    rho = [exact(w) for w in problem.spectrum.weights]
    r = [[[f / 100] * M for _ in range(K)] for f in rho]
    q = [[[f / 10 if i == j else 0 for j in range(K)] for i in range(K)] for f in rho]
    y0, params = _params(problem, system, teacher, r, q, problem.eta)
    return grouped.integrate_float64(system, y0, params, [0, guess_alpha], looser=100)[0].states[-1]


def _field(evaluators, first_order):
    """y -> (rhs, eps_g, Jacobian); first order in eta: eta A = (4 F(eta) - F(2 eta)) / 2, exactly,
    since the right-hand side is eta A + eta^2 B."""
    if not first_order:
        return lambda y: evaluators[0].values(y)[:3]

    def field(y):
        (f1, eps, j1, _), (f2, _, j2, _) = (e.values(y) for e in evaluators)
        mix = lambda a, b: (4 * a - b) / 2
        return [mix(a, b) for a, b in zip(f1, f2)], eps, [[mix(a, b) for a, b in zip(p, s)] for p, s in zip(j1, j2)]
    return field


def _newton(field, expand, rows, v, bits):
    """Newton's method in the reduced unknowns v, with the exact Jacobian projected on them."""
    full = lambda v: [v[i] for i in expand]
    m = len(v)
    for _ in range(MAX_NEWTON):
        f, _, jac = field(full(v))
        reduced = mpmath.matrix(m, m)
        for a, row in enumerate(rows):
            for j, b in enumerate(expand):
                reduced[a, b] += jac[row][j]
        if not all(mpmath.isfinite(x) for x in list(f) + list(reduced)):
            raise ExactdynError("the plateau search met non-finite values (eta past the stability limit?): no "
                                "plateau to report")
        try:
            step = mpmath.lu_solve(reduced, mpmath.matrix([f[row] for row in rows]))
        except ZeroDivisionError:
            raise PrecisionError("the plateau's reduced Jacobian is singular: Newton's method stops") from None
        v = [a - b for a, b in zip(v, step)]
        if max(abs(s) for s in step) <= mpmath.mpf(2) ** (16 - bits) * max(1, max(abs(a) for a in v)):
            return v
    raise PrecisionError(f"Newton's method did not converge on the plateau in {MAX_NEWTON} steps")


def _solve(problem, system, teacher, start, bits, first_order):
    """One run at `bits` from the full state `start`: (root as a full state, eps_g, eigenvalues by
    descending real part, residual).  First order in eta the plateau's students are identical
    (z = y): the flow has no curvature along their difference there, a double root that Newton
    would approach only linearly and to half the digits, so z = y is imposed and then checked
    by the residual of the full system."""
    compiled = engine.compile_system(system)
    K, M = problem.K, problem.M
    zeros = lambda rows, cols: [[[0] * cols for _ in range(rows)] for _ in range(problem.L)]
    params = [_params(problem, system, teacher, zeros(K, M), zeros(K, K), problem.eta * f)[1] for f in (1, 2)]
    field = _field([engine.RealEvaluator(compiled, p, bits) for p in params[:1 + first_order]], first_order)
    expand, rows = _layout(system, M, tied=first_order)
    with working_precision(bits):
        root = _newton(field, expand, rows, [mpmath.mpf(start[j]) for j in rows], bits)
        state = [root[i] for i in expand]
        f, eps, jac = field(state)
        residual = max(abs(v) for v in f)
    return state, eps, engine.eigensystem(jac, bits), residual


def complex_digits(value, check, cap):
    """Relative digits on which two complex numbers agree (at most `cap`)."""
    gap = abs(value - check)
    if gap == 0:
        return cap
    scale = abs(check)
    return 0 if scale == 0 else max(0, min(cap, int(mpmath.floor(-mpmath.log10(gap / scale)))))


def matched_digits(low, high, cap):
    """Digits of each eigenvalue of the checked run: agreement with the nearest one of the other."""
    return tuple(max((complex_digits(a, e, cap) for a in low), default=0) for e in high)


def _check_request(problem, digits):
    if not isinstance(problem, Problem):
        raise ExactdynError("the plateau needs an exactdyn Problem")
    if problem.K < 2:
        raise ExactdynError("a plateau of specialisation needs K >= 2 students")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 1000:
        raise ExactdynError(f"digits must be a whole number from 1 to 1000, got {digits!r}")


def find_plateau(problem, teacher=None, *, digits=30, guess_alpha=400, first_order=False):
    """The plateau of `problem` (eigenmode system) where all students are alike, for any teacher
    overlaps `teacher` (per group, M x M, exact; default t^k = rho_k I).

    Alike students stay alike (the equations are symmetric under permuting students), so the
    unknowns per group are r^k_in = x_kn (one per teacher), q^k_ii = y_k and q^k_ij = z_k.
    ``first_order``: drop the eta^2 terms, as the papers' plateau analysis does."""
    _check_request(problem, digits)
    t = teacher_overlaps(problem, teacher)
    system = derive(problem.structure, "mode")
    start = _guess(problem, system, t, to_fraction(guess_alpha, "guess_alpha"))
    bits = bits_for_digits(digits) + 32
    low = _solve(problem, system, t, start, bits, first_order)
    high = _solve(problem, system, t, low[0], bits + CHECK_BITS, first_order)
    if high[3] > mpmath.mpf(10) ** -digits:
        raise PrecisionError(f"the plateau residual {mpmath.nstr(high[3], 3)} exceeds 1e-{digits}")
    return _plateau(system, problem.M, low, high, digits, bits + CHECK_BITS, first_order)


def _split(state, rows, M):
    """(x, y, z) per group from a full state, `rows` the untied layout's reduced equations."""
    values = [state[j] for j in rows]
    blocks = [values[i: i + M + 2] for i in range(0, len(values), M + 2)]
    return tuple(tuple(b[:M]) for b in blocks), tuple(b[M] for b in blocks), tuple(b[M + 1] for b in blocks)


def _plateau(system, M, low, high, digits, bits, first_order):
    """The checked run's values with the digits both runs agree on."""
    rows = _layout(system, M)[1]
    with working_precision(bits):
        x, y, z = _split(high[0], rows, M)
        x_digits, y_digits, z_digits = _split([agreed_digits(a, b, digits) for a, b in zip(low[0], high[0])], rows, M)
        rate = mpmath.re(high[2][0])
        return Plateau(x, y, z, high[1], tuple(high[2]), rate, digits, bits, high[3],
                       "first order in eta" if first_order else "none", x_digits, y_digits, z_digits,
                       agreed_digits(low[1], high[1], digits), matched_digits(low[2], high[2], digits),
                       agreed_digits(mpmath.re(low[2][0]), rate, digits))


def approximate_plateau(problem, teacher=None, *, digits=30):
    """The papers' approximate plateau: uniform teacher overlaps per group (`uniform_teacher`) and
    the equations to first order in eta, solved without further approximation."""
    _check_request(problem, digits)
    pl = find_plateau(problem, uniform_teacher(teacher_overlaps(problem, teacher)), digits=digits, first_order=True)
    return replace(pl, approximation="uniform teacher overlaps, first order in eta")


def curve_plateau(alpha, eps):
    """(start, height, length) of the first plateau of a learning curve sampled on a grid (floats:
    a measurement of a computed or simulated curve, not a fixed point).

    After the initial drop (eps below a tenth of eps(0)), the plateau sits where the relative decay
    rate |d eps/d alpha| / eps is smallest while eps stays above a tenth of its value at the end of
    the drop; its length runs from there until eps falls below half that height.  None when the
    curve never drops or never escapes."""
    alpha, eps = np.asarray(alpha, float), np.asarray(eps, float)
    dropped = np.nonzero(eps < eps[0] / 10)[0]
    if dropped.size == 0:
        return None
    first = dropped[0]
    window = np.nonzero(eps[first:] > eps[first] / 10)[0] + first
    rate = -np.gradient(eps, alpha)[window] / eps[window]
    start = window[np.argmin(rate)]
    height = eps[start]
    below = np.nonzero(eps[start:] < height / 2)[0]
    if below.size == 0:
        return None
    return float(alpha[start]), float(height), float(alpha[start + below[0]] - alpha[start])


@dataclass(frozen=True)
class FloatPlateau:
    """The plateau in float64 (`float64_plateau`): ``state`` in the system's order, eps_g there, the
    Jacobian's eigenvalues by descending real part, the escape rate (the largest real part) and the
    teacher overlaps it was found for (exact)."""

    state: tuple
    eps_g: float
    eigenvalues: tuple
    escape_rate: float
    teacher: tuple

    def start(self, problem, deviation=0, seed=0):
        """The plateau as an InitialState of `problem` (the values rounded once to exact rationals),
        every r^k_in moved by deviation * rho_k * G_in, G a seeded K x M normal draw: a
        symmetry-breaking kick of size `deviation` (with a symmetric part, which decays)."""
        d = to_fraction(deviation, "deviation")
        system = derive(problem.structure, "mode")
        if len(system.states) != len(self.state) or len(self.teacher) != problem.L:
            raise ExactdynError("this plateau belongs to another problem")
        G = np.random.default_rng(seed).normal(size=(problem.K, problem.M))
        rho = [exact(w) for w in problem.spectrum.weights]
        r = [[[0] * problem.M for _ in range(problem.K)] for _ in range(problem.L)]
        q = [[[0] * problem.K for _ in range(problem.K)] for _ in range(problem.L)]
        for (kind, k, a, b), v in zip(system.layout, self.state):
            if kind == "r":
                r[k - 1][a - 1][b - 1] = exact(v) + d * rho[k - 1] * exact(G[a - 1, b - 1])
            else:
                q[k - 1][a - 1][b - 1] = q[k - 1][b - 1][a - 1] = exact(v)
        return InitialState(r, q, self.teacher)

    def escape_time(self, deviation):
        """alpha for a symmetry-breaking deviation `deviation` to grow by 1/deviation (float64)."""
        d = float(to_fraction(deviation, "deviation"))
        if not 0 < d < 1:
            raise ExactdynError(f"the deviation must lie between 0 and 1, got {deviation}")
        return float(np.log(1 / d) / self.escape_rate)


def float64_plateau(problem, teacher=None, *, guess_alpha=400):
    """`find_plateau` in float64 for large L (the MPFR route's Jacobian has (7L)^2 entries for
    K = M = 2 and takes minutes from L = 32): the same reduced Newton iteration on the grouped form's
    exact Jacobian (L blocks and a border, `numeric.grouped`), all eigenvalues by LAPACK.  No digits
    are vouched for here: the tests compare it with `find_plateau`."""
    _check_request(problem, 15)
    t = teacher_overlaps(problem, teacher)
    system = derive(problem.structure, "mode")
    form = grouped.group_form(system)
    if form is None:
        raise ExactdynError("this problem's equations have no grouped form: use find_plateau")
    zeros = lambda rows, cols: [[[0] * cols for _ in range(rows)] for _ in range(problem.L)]
    arrow = grouped._Arrowhead(form, _params(problem, system, t, zeros(problem.K, problem.M),
                                             zeros(problem.K, problem.K), problem.eta)[1])
    n, order = arrow.n, form.states.ravel()
    # d(aggregates)/d(groups): the Jacobian of the system itself is the blocks' plus border times this
    weights = arrow.weights.transpose(1, 0, 2).reshape(arrow.m, n)

    def field(y):
        groups = y[form.states]
        z = np.concatenate([groups.ravel(), arrow.aggregates(groups)])
        full = arrow.jacobian(0, z).toarray()
        f, jac = np.empty(n), np.empty((n, n))
        f[order] = arrow.rhs(0, z)[:n]
        jac[np.ix_(order, order)] = full[:n, :n] + full[:n, n:] @ weights
        return f, jac, z[n:]

    expand, rows = _layout(system, problem.M)
    spread = np.zeros((n, len(rows)))
    spread[np.arange(n), expand] = 1
    y = np.array([float(v) for v in _guess(problem, system, t, to_fraction(guess_alpha, "guess_alpha"))])
    v, polished = y[rows], False
    for _ in range(MAX_NEWTON):
        f, jac, _ = field(spread @ v)
        step = np.linalg.solve(jac[rows] @ spread, f[rows])
        v = v - step
        if polished:
            break
        # quadratic convergence: one step past 1e-9 reaches the rounding floor (~1e-14 here)
        polished = np.abs(step).max() <= 1e-9 * max(1.0, np.abs(v).max())
    else:
        raise PrecisionError(f"Newton's method did not converge on the float64 plateau in {MAX_NEWTON} steps")
    y = spread @ v
    f, jac, aggregates = field(y)
    eps = form.eps(np.ascontiguousarray(aggregates[:, None]), pars=np.ascontiguousarray(arrow.pars[:form.eps.nparams, :1]))[0][0]
    values = np.linalg.eigvals(jac)
    values = values[np.argsort(-values.real)]
    return FloatPlateau(tuple(y.tolist()), float(eps), tuple(values.tolist()), float(values[0].real), t)


def plateau_length(alpha, eps, height, band=Fraction(1, 20)):
    """(entry, exit) of the plateau at `height` in a learning curve sampled on a grid: entry where eps
    first comes within `band` (relative) of the height, exit where it first falls below
    (1 - band) height after that, each linearly interpolated between grid points; None when the
    curve never enters or never leaves the band."""
    alpha, eps = np.asarray(alpha, float), np.asarray(eps, float)
    b = float(to_fraction(band, "band"))
    if not 0 < b < 1:
        raise ExactdynError(f"the band must lie between 0 and 1, got {band}")
    if not (alpha.ndim == eps.ndim == 1 and len(alpha) == len(eps) >= 2 and np.all(np.diff(alpha) > 0)):
        raise ExactdynError("alpha must increase and match eps point by point")
    h = float(height)
    inside = np.nonzero(np.abs(eps / h - 1) <= b)[0]
    if inside.size == 0:
        return None
    first = inside[0]
    below = np.nonzero(eps[first:] < (1 - b) * h)[0]
    if below.size == 0:
        return None
    last = first + below[0]

    def crossing(i, level):  # alpha where eps crosses `level` between grid points i - 1 and i
        if i == 0:
            return float(alpha[0])
        a0, a1, e0, e1 = alpha[i - 1], alpha[i], eps[i - 1], eps[i]
        return float(a0 + (a1 - a0) * (level - e0) / (e1 - e0))
    entry = crossing(first, (1 + b) * h if eps[first - 1 if first else 0] > h else (1 - b) * h)
    return entry, crossing(last, (1 - b) * h)
