"""Quadratic two-layer networks on isotropic inputs (docs/model.md section 2, the quadratic-network paper).

Student width p = K, teacher width p* = M, mean output weights, loss (y - yhat)^2.  Every
equation here comes from the derivation engine: the L = 1 moment system with Sigma = I
(c_0 = -1, tau_2 = 1) and an orthonormal teacher (T = I).  Analyses on top of it:

- gradient flow (t = eta alpha, eta -> 0) and its eta^2 correction;
- the norm-learning fixed point and the linearisation at the plateau (exact, sympy);
- the average escape law from the linearised flow;
- S = rho (rho^T rho)^{-1/2} and the zero-error solution closest to the initial state;
- the population risk landscape: gradient and pN x pN Hessian of the derived risk in the
  weights, the stationary classes, and their spectra reduced exactly to a finite problem.
"""
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from ..symbolic.cache import derive
from ..errors import ExactdynError
from ..symbolic.hierarchy import ETA, Structure

T_SYM = sp.Symbol("t", positive=True)
EPS_SYM = sp.Symbol("epsilon", positive=True)


@dataclass(frozen=True)
class QuadraticSystem:
    """d/d(alpha) of rho (p x p*) and Q (p x p, symmetric) on isotropic inputs; sympy throughout.

    ``rho[k][l]`` and ``Q[k][j]`` are the state symbols (Q[j][k] is Q[k][j]); ``rhs`` maps each
    state symbol to its right-hand side (polynomial of degree 2 in eta); ``risk`` is the
    population risk E (y - yhat)^2."""

    p: int
    pstar: int
    rho: tuple
    Q: tuple
    states: tuple
    rhs: dict
    risk: sp.Expr

    def flow(self, order=1):
        """Right-hand sides in t = eta alpha: order 1 is the gradient flow (eta -> 0), order 2 adds
        the eta^2 terms (d/dt = A + eta B)."""
        out = {}
        for s, e in self.rhs.items():
            e = sp.expand(e)
            out[s] = e.coeff(ETA, 1) + (ETA * e.coeff(ETA, 2) if order == 2 else 0)
        return out


def isotropic_system(p, pstar):
    """The derived system of the quadratic network with Sigma = I and an orthonormal teacher."""
    for name, width in (("p (student width)", p), ("p* (teacher width)", pstar)):
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 16:
            raise ExactdynError(f"{name} must be a whole number from 1 to 16, got {width!r}")
    system = derive(Structure.named("quadratic", p, pstar, 1), "moment")
    by_name = {str(s): s for s in (*system.states, *system.params)}
    values = {by_name["c0"]: -1, by_name["tau2"]: 1}
    for n in range(1, pstar + 1):
        for m in range(n, pstar + 1):
            values[by_name[f"T1_{n}_{m}"]] = 1 if n == m else 0
    rho = tuple(tuple(by_name[f"R1_{k}_{l}"] for l in range(1, pstar + 1)) for k in range(1, p + 1))
    Q = tuple(tuple(by_name[f"Q1_{min(k, j)}_{max(k, j)}"] for j in range(1, p + 1)) for k in range(1, p + 1))
    rhs = {s: sp.expand(system.explicit(e).xreplace(values)) for s, e in zip(system.states, system.rhs)}
    risk = sp.expand(system.explicit(system.eps_g).xreplace(values))
    return QuadraticSystem(p, pstar, rho, Q, tuple(system.states), rhs, risk)


# --- norm learning and the plateau -----------------------------------------------------------------

def _symmetric_point(system, q, rho=0):
    point = {s: 0 for s in system.states}
    for k in range(system.p):
        point[system.Q[k][k]] = q
    return point


def norm_fixed_point(system):
    """The common norm Q_kk = Qbar the gradient flow settles to with rho = 0 and Q diagonal (exact)."""
    q = sp.Symbol("q", positive=True)
    flow = system.flow(1)
    point = _symmetric_point(system, q)
    roots = sp.solve(flow[system.Q[0][0]].xreplace(point), q)
    if len(roots) != 1:
        raise ExactdynError(f"expected one positive norm fixed point, found {roots}")
    return sp.nsimplify(roots[0])


def plateau_linearisation(system):
    """(Jacobian, {eigenvalue: multiplicity}) of the gradient flow at rho = 0, Q = Qbar I (exact)."""
    qbar = norm_fixed_point(system)
    flow = system.flow(1)
    states = list(system.states)
    jac = sp.Matrix([[sp.diff(flow[s], x) for x in states] for s in states]).xreplace(_symmetric_point(system, qbar))
    return jac, {sp.nsimplify(k): v for k, v in jac.eigenvals().items()}


def plateau_rates(system):
    """The growth rates (in t = eta alpha) of rho_kl, of an off-diagonal Q_kk' and of a norm at the plateau."""
    jac, _ = plateau_linearisation(system)
    index = {s: i for i, s in enumerate(system.states)}
    rate = lambda s: jac[index[s], index[s]]
    out = {"rho": rate(system.rho[0][0]), "norm": rate(system.Q[0][0])}
    if system.p > 1:
        out["Q_offdiagonal"] = rate(system.Q[0][1])
    return out


def escape_law(system):
    """<R(0) - R(t)> / R_plateau over rho_kl(0) ~ N(0, eps^2) i.i.d. with Q = Qbar I, along the
    linearised gradient flow rho_kl(t) = rho_kl(0) exp(omega_rho t) (leading order in eps):
    a sympy expression in T_SYM (t = eta alpha) and EPS_SYM."""
    qbar = norm_fixed_point(system)
    omega = plateau_rates(system)["rho"]
    z = {s: sp.Symbol(f"z_{s}") for row in system.rho for s in row}
    point = _symmetric_point(system, qbar)

    def mean_risk(t):
        value = sp.expand(system.risk.xreplace({**point, **{s: EPS_SYM * sp.exp(omega * t) * z[s] for s in z}}))
        # Gaussian average: z^2 -> 1, odd powers -> 0 (R is quadratic in rho)
        for s in z.values():
            value = sp.expand(value.subs(s ** 2, 1).subs(s, 0))
        return value

    plateau = system.risk.xreplace(point)
    return sp.simplify((mean_risk(0) - mean_risk(T_SYM)) / plateau)


# --- trajectories in t = eta alpha -----------------------------------------------------------------

@dataclass(frozen=True)
class Flow:
    """The right-hand side d(rho, Q)/dt, t = eta alpha, compiled once: A + eta B (eta = 0: gradient flow)."""

    system: QuadraticSystem
    rhs: object   # numpy function of (state vector, eta)
    risk: object  # numpy function of the state vector

    def pack(self, rho, Q):
        rho, Q = np.asarray(rho, float), np.asarray(Q, float)
        p, ps = self.system.p, self.system.pstar
        if rho.shape != (p, ps) or Q.shape != (p, p):
            raise ExactdynError(f"rho must be {p} x {ps} and Q {p} x {p}")
        lookup = {**{self.system.rho[k][l]: rho[k, l] for k in range(p) for l in range(ps)},
                  **{self.system.Q[k][j]: Q[k, j] for k in range(p) for j in range(p)}}
        return np.array([lookup[s] for s in self.system.states])

    def unpack(self, y):
        p, ps = self.system.p, self.system.pstar
        where = {s: i for i, s in enumerate(self.system.states)}
        rho = np.array([[y[where[self.system.rho[k][l]]] for l in range(ps)] for k in range(p)])
        Q = np.array([[y[where[self.system.Q[k][j]]] for j in range(p)] for k in range(p)])
        return rho, Q


def compile_flow(system):
    flow = system.flow(2)
    args = [list(system.states), ETA]
    rhs = sp.lambdify(args, [flow[s] for s in system.states], modules="numpy", cse=True)
    risk = sp.lambdify([list(system.states)], system.risk, modules="numpy")
    return Flow(system, lambda y, eta: np.array(rhs(y, eta), float), risk)


def trajectory(flow, rho0, Q0, t, *, eta=0.0, rtol=1e-10, atol=1e-13):
    """rho(t), Q(t) (arrays over t) and the risk along the derived dynamics in t = eta alpha
    (eta = 0: gradient flow; eta > 0: the full ODE, eta^2 terms included), float64 DOP853."""
    from scipy.integrate import solve_ivp

    t = np.asarray(t, float)
    if t.ndim != 1 or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ExactdynError("t must be increasing and >= 0")
    y0 = flow.pack(rho0, Q0)
    sol = solve_ivp(lambda _, y: flow.rhs(y, eta), (0.0, t[-1]), y0, method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    if sol.status != 0 or not np.all(np.isfinite(sol.y)):
        raise ExactdynError(f"the integration failed ({sol.message}); is eta too large?")
    states = [flow.unpack(y) for y in sol.y.T]
    return (np.array([r for r, _ in states]), np.array([q for _, q in states]),
            np.array([flow.risk(y) for y in sol.y.T]))


# --- the conserved matrix S and the closest solution -------------------------------------------------

def s_matrix(rho):
    """S = rho (rho^T rho)^{-1/2} (p x p*), float64; rho must have full column rank."""
    rho = np.asarray(rho, float)
    w, v = np.linalg.eigh(rho.T @ rho)
    if w.min() <= 1e-14 * max(w.max(), 1e-300):
        raise ExactdynError("rho^T rho is singular: S is undefined")
    return rho @ (v / np.sqrt(w)) @ v.T


def closest_solution(rho0, p, pstar):
    """The zero-error (rho, Q) closest to the initial weights: rho = sqrt(p/p*) S, Q = (p/p*) S S^T."""
    S = s_matrix(rho0)
    if S.shape != (p, pstar):
        raise ExactdynError(f"rho must be {p} x {pstar}, got {S.shape[0]} x {S.shape[1]}")
    return np.sqrt(p / pstar) * S, (p / pstar) * S @ S.T


# --- the landscape ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RiskQuadratic:
    """The derived risk as R = c + g.x + x.H.x / 2 in x = (rho entries, Q entries with k <= j),
    for weights W (p x n) against an orthonormal teacher W* (p* x n): rho = W W*^T, Q = W W^T."""

    p: int
    pstar: int
    labels: tuple  # ("rho", k, l) or ("Q", k, j)
    constant: Fraction
    grad: tuple
    hess: tuple


def risk_quadratic(system):
    symbols = [s for row in system.rho for s in row] + [system.Q[k][j] for k in range(system.p)
                                                          for j in range(k, system.p)]
    labels = [("rho", k, l) for k in range(system.p) for l in range(system.pstar)] + \
             [("Q", k, j) for k in range(system.p) for j in range(k, system.p)]
    zero = {s: 0 for s in symbols}
    as_fraction = lambda e: Fraction(int(sp.Rational(e).p), int(sp.Rational(e).q))
    if sp.Poly(system.risk, *symbols).total_degree() > 2:
        raise ExactdynError("the risk is not quadratic in the overlaps")
    grad = tuple(as_fraction(sp.diff(system.risk, s).xreplace(zero)) for s in symbols)
    hess = tuple(tuple(as_fraction(sp.diff(system.risk, a, b)) for b in symbols) for a in symbols)
    return RiskQuadratic(system.p, system.pstar, tuple(labels), as_fraction(system.risk.xreplace(zero)), grad, hess)


def _overlap_jacobian(rq, W, Wstar):
    """x(W) and dx/dW (n_x x p n) for x = (rho, Q) as in RiskQuadratic."""
    p, n = W.shape
    x = np.empty(len(rq.labels))
    jac = np.zeros((len(rq.labels), p * n))
    for i, (kind, a, b) in enumerate(rq.labels):
        if kind == "rho":
            x[i] = W[a] @ Wstar[b]
            jac[i, a * n:(a + 1) * n] = Wstar[b]
        else:
            x[i] = W[a] @ W[b]
            jac[i, a * n:(a + 1) * n] += W[b]
            jac[i, b * n:(b + 1) * n] += W[a]
    return x, jac


def risk_gradient(rq, W, Wstar):
    """dR/dW (p x n) of the derived population risk."""
    x, jac = _overlap_jacobian(rq, np.asarray(W, float), np.asarray(Wstar, float))
    first = np.array(rq.grad, float) + np.array(rq.hess, float) @ x
    return (first @ jac).reshape(np.shape(W))


def population_hessian(rq, W, Wstar):
    """The pn x pn Hessian of the derived population risk in the weights (row-major W)."""
    W, Wstar = np.asarray(W, float), np.asarray(Wstar, float)
    p, n = W.shape
    x, jac = _overlap_jacobian(rq, W, Wstar)
    first = np.array(rq.grad, float) + np.array(rq.hess, float) @ x
    out = jac.T @ np.array(rq.hess, float) @ jac
    # second derivatives of Q_kj = W_k . W_j
    G = np.zeros((p, p))
    for i, (kind, a, b) in enumerate(rq.labels):
        if kind == "Q":
            G[a, b] += first[i]
            G[b, a] += first[i]
    return out + np.kron(G, np.eye(n))


@dataclass(frozen=True)
class StationaryClass:
    name: str
    description: str
    scale2: Fraction   # W = sqrt(scale2) * (coordinate-aligned rows): the paper's stationary forms
    rows: tuple        # for each student row, ("teacher", l), ("free", j) or None (zero row)


def stationary_classes(p, pstar):
    """The paper's stationary forms: tabula rasa, uncorrelated rank r = 1..p (W = sqrt(p/(2+r)) M O^T)
    and correlated rank s = 1..min(p, p*) (W = sqrt(p(2+p*)/(p*(2+s))) M W*_s), with coordinate-aligned
    M, O.  That they are stationary is checked against the derived gradient, not assumed."""
    out = [StationaryClass("tabula rasa", "W = 0", Fraction(0), (None,) * p)]
    for r in range(1, p + 1):
        out.append(StationaryClass(f"uncorrelated r={r}", f"W = sqrt(p/(2+r)) M O^T, rank {r}, W W*^T = 0",
                                   Fraction(p, 2 + r), tuple(("free", k) if k < r else None for k in range(p))))
    for s in range(1, min(p, pstar) + 1):
        out.append(StationaryClass(f"correlated s={s}", f"W = sqrt(p(2+p*)/(p*(2+s))) M W*, rank {s}",
                                   Fraction(p * (2 + pstar), pstar * (2 + s)),
                                   tuple(("teacher", k) if k < s else None for k in range(p))))
    return out


def class_weights(cls, p, pstar, n):
    """(W / sqrt(scale2), W*) in coordinates: teacher e_1..e_p*, free directions e_{p*+1}, ..."""
    if n < pstar + p:
        raise ExactdynError(f"N = {n} is too small: the classes need N >= p + p* = {p + pstar}")
    Wstar = np.eye(pstar, n)
    unit = np.zeros((p, n))
    for k, row in enumerate(cls.rows):
        if row is not None:
            unit[k, row[1] if row[0] == "teacher" else pstar + row[1]] = 1
    return unit, Wstar


def exact_spectrum(rq, cls, n):
    """{eigenvalue (sympy): multiplicity} of the population Hessian at a class in dimension n.

    Rotation invariance reduces the problem to dimension d = p + p* (the span of the teacher
    and student rows), solved exactly (rational Hessian, characteristic polynomial factored
    over Q), plus a bulk: each of the n - d directions orthogonal to every row carries the
    eigenvalues of G_ab = (1 + delta_ab) dR/dQ_ab, the Hessian's action on the student index there."""
    d = rq.p + rq.pstar
    if n < d:
        raise ExactdynError(f"N = {n} is too small: the classes need N >= p + p* = {d}")
    unit, Wstar = class_weights(cls, rq.p, rq.pstar, d)
    H, G = _class_hessian_exact(rq, unit, Wstar, cls.scale2)
    spectrum = _eigen_multiplicities(H.charpoly())
    for value, mult in _eigen_multiplicities(G.charpoly()).items():
        spectrum[value] = spectrum.get(value, 0) + mult * (n - d)
    return spectrum


def _class_hessian_exact(rq, unit, Wstar, scale):
    """The Hessian at W = sqrt(scale) * unit and the matrix 2 dR/dQ, exactly (flint fmpq_mat).

    With R = c + g.x + x.H.x/2 free of rho-Q cross terms and of terms linear in rho, every entry
    is rational: rho-rho blocks carry W*-W* products, Q-Q blocks `scale` times unit-unit ones."""
    import flint

    n_rho = rq.pstar * rq.p
    if any(rq.grad[:n_rho]) or any(rq.hess[i][j] for i in range(n_rho) for j in range(n_rho, len(rq.labels))):
        raise ExactdynError("the risk is not of the form (rho^2, Q, Q^2): the exact class reduction does not apply")
    p, n = unit.shape
    q = lambda v: flint.fmpq(Fraction(v).numerator, Fraction(v).denominator)
    x_unit, jac = _overlap_jacobian(rq, unit, Wstar)
    first_q = [rq.grad[i] + sum(rq.hess[i][j] * scale * Fraction(int(round(x_unit[j])))
                                for j in range(n_rho, len(rq.labels))) for i in range(len(rq.labels))]
    weights = [1 if kind == "rho" else scale for kind, _, _ in rq.labels]  # J rows scale with sqrt(scale)
    Jm = flint.fmpq_mat([[q(int(round(v))) for v in row] for row in jac])
    Hm = flint.fmpq_mat([[q(h * weights[i]) if (i < n_rho) == (j < n_rho) else q(0) for j, h in enumerate(row)]
                         for i, row in enumerate(rq.hess)])
    out = Jm.transpose() * Hm * Jm
    G = flint.fmpq_mat(p, p)
    for i, (kind, a, b) in enumerate(rq.labels):
        if kind == "Q":
            G[a, b] += q(first_q[i])
            G[b, a] += q(first_q[i])
    for a in range(p):
        for b in range(p):
            if G[a, b] != 0:
                for k in range(n):
                    out[a * n + k, b * n + k] += G[a, b]
    return out, G


def _eigen_multiplicities(charpoly):
    """{eigenvalue (sympy): multiplicity} from an exact characteristic polynomial (fmpq_poly)."""
    z = sp.Symbol("z")
    poly = sp.Poly([sp.Rational(int(c.p), int(c.q)) for c in reversed(charpoly.coeffs())], z)
    out = {}
    for factor, mult in sp.factor_list(poly)[1]:
        roots = sp.roots(factor, z) if factor.degree() <= 2 else {r: 1 for r in factor.all_roots()}
        for root, rmult in roots.items():
            out[root] = out.get(root, 0) + mult * rmult
    return out


def group_eigenvalues(values, tol=1e-8):
    """[(value, multiplicity)] of float eigenvalues, merging those within tol (relative to the largest)."""
    values = np.sort(np.asarray(values, float))
    scale = max(1.0, float(np.max(np.abs(values)))) if len(values) else 1.0
    groups = []
    for v in values:
        if groups and abs(v - groups[-1][0] / groups[-1][1]) <= tol * scale:
            groups[-1][0] += v
            groups[-1][1] += 1
        else:
            groups.append([v, 1])
    return [(s / m, m) for s, m in groups]


def student_dof(p, n, seed=0):
    """The dimension of the set of matrices W^T W (p x n weights) near a random W: the rank of the
    Jacobian of W -> W^T W (measured, numerically)."""
    W = np.random.default_rng(seed).normal(size=(p, n))
    return int(np.linalg.matrix_rank(_gram_jacobian(W)))


def zero_error_dimensions(p, pstar, n, seed=0):
    """(manifold, flat) at a zero-error W = sqrt(p/p*) S W* (random S, S^T S = I), measured.

    The zero-error set {W : W^T W / p = W*^T W* / p*} has its rows in the teacher span, W = A W*
    with A^T A = (p/p*) I: `manifold` is the kernel dimension of the Jacobian of W -> W^T W on
    such directions.  `flat` is the kernel dimension on all p n directions: first-order flat
    directions, which include (N - p*)(p - p*) leaving the manifold at second order."""
    rng = np.random.default_rng(seed)
    if pstar > min(p, n):
        raise ExactdynError("a zero-error solution needs p* <= min(p, N)")
    S, _ = np.linalg.qr(rng.normal(size=(p, pstar)))
    Wstar = np.linalg.qr(rng.normal(size=(n, pstar)))[0].T
    jac = _gram_jacobian(np.sqrt(p / pstar) * S @ Wstar)  # columns: the p n entries of dW
    in_span = np.kron(np.eye(p), Wstar.T)                 # dW = dA W*: p n x p p*
    manifold = p * pstar - int(np.linalg.matrix_rank(jac @ in_span))
    return manifold, p * n - int(np.linalg.matrix_rank(jac))


def _gram_jacobian(W):
    """d(W^T W) (upper triangle, n(n+1)/2 rows) against the p n entries of W (row-major)."""
    p, n = W.shape
    rows = []
    for i in range(n):
        for j in range(i, n):
            d = np.zeros((p, n))
            d[:, i] += W[:, j]
            d[:, j] += W[:, i]
            rows.append(d.ravel())
    return np.array(rows)


@dataclass(frozen=True)
class ClassSpectrum:
    """Hessian eigenvalues at one stationary class: exact {value: multiplicity} and numerical
    [(value, multiplicity)] of the pN x pN matrix at a randomly rotated copy of the point."""

    cls: StationaryClass
    gradient_norm: float
    exact: dict
    numerical: tuple


def landscape(p, pstar, n, *, seed=0, max_size=3000):
    """Every stationary class of the p, p* quadratic network in dimension n, with its spectra."""
    if isinstance(n, bool) or not isinstance(n, int) or n < p + pstar:
        raise ExactdynError(f"N must be a whole number >= p + p* = {p + pstar}, got {n!r}")
    if p * n > max_size:
        raise ExactdynError(f"the Hessian would be {p * n} x {p * n}; keep p N <= {max_size}")
    system = isotropic_system(p, pstar)
    rq = risk_quadratic(system)
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    out = []
    for cls in stationary_classes(p, pstar):
        unit, Wstar = class_weights(cls, p, pstar, n)
        W, Ws = np.sqrt(float(cls.scale2)) * unit @ rotation, Wstar @ rotation
        grad = float(np.abs(risk_gradient(rq, W, Ws)).max())
        numerical = group_eigenvalues(np.linalg.eigvalsh(population_hessian(rq, W, Ws)))
        out.append(ClassSpectrum(cls, grad, exact_spectrum(rq, cls, n), tuple(numerical)))
    return out


@dataclass(frozen=True)
class MatchedEigenvalue:
    """An analytic eigenvalue (sympy; None when unmatched) with its multiplicity next to the
    numerical one within 1e-7 (relative; None, 0 when none is)."""

    exact: object
    value: float
    multiplicity: int
    numerical: float
    numerical_multiplicity: int

    @property
    def agrees(self):
        return self.multiplicity == self.numerical_multiplicity


def match_spectrum(spectrum):
    """A ClassSpectrum's analytic eigenvalues (ascending) each paired with the numerical one that
    agrees within 1e-7 (relative), then the numerical eigenvalues left over."""
    numerical, rows = list(spectrum.numerical), []
    for value, mult in sorted(spectrum.exact.items(), key=lambda kv: float(kv[0])):
        x = float(value)
        near = next((nm for nm in numerical if abs(nm[0] - x) <= 1e-7 * max(1.0, abs(x))), None)
        if near is not None:
            numerical.remove(near)
        rows.append(MatchedEigenvalue(value, x, mult, *(near or (None, 0))))
    return rows + [MatchedEigenvalue(None, None, 0, v, m) for v, m in numerical]


def index_counts(rows):
    """(negative, null, positive) multiplicities of the analytic eigenvalues."""
    count = lambda keep: sum(r.multiplicity for r in rows if r.exact is not None and keep(r.value))
    return count(lambda v: v < 0), count(lambda v: v == 0), count(lambda v: v > 0)


# --- the same ODE in matrix form (Stein's lemma), for wide students ---------------------------------
#
# With z = (u, lambda) ~ N(0, C), C = [[I, rho^T], [rho, Q]] and y - yhat = z^T A z, A = diag(I/p*, -I/p),
# Stein's lemma gives E[(z^T A z) z z^T] = tr(AC) C + 2 CAC and, applied twice,
# E[(z^T A z)^2 z z^T] = R C + 4 tr(AC) CAC + 8 CACAC with R = tr(AC)^2 + 2 tr(ACAC) the risk.  It costs
# O((p + p*)^3) per call, where deriving and compiling the system takes minutes at p = 8; the tests
# check it against the derived system.

def _covariance_products(rho, Q):
    ps = rho.shape[1]
    C = np.block([[np.eye(ps), rho.T], [rho, Q]])
    a = np.concatenate([np.full(ps, 1.0 / ps), np.full(Q.shape[0], -1.0 / Q.shape[0])])
    CA = C * a                      # C A (A diagonal)
    CAC = CA @ C
    tr_ac = float(np.trace(CA))
    risk = tr_ac ** 2 + 2 * float(np.sum(CA * CA.T))  # tr(AC)^2 + 2 tr(ACAC)
    return C, CA, CAC, tr_ac, risk


def _overlaps(rho, Q):
    rho, Q = np.asarray(rho, float), np.asarray(Q, float)
    if rho.ndim != 2 or Q.shape != (rho.shape[0],) * 2:
        raise ExactdynError(f"rho must be p x p* and Q p x p, got {rho.shape} and {Q.shape}")
    return rho, Q


def matrix_rhs(rho, Q, eta):
    """(d rho/dt, dQ/dt), t = eta alpha, of the quadratic network's overlap ODE with its eta^2 terms
    (float64): the derived system in matrix form, O((p + p*)^3) per call."""
    rho, Q = _overlaps(rho, Q)
    p, ps = Q.shape[0], rho.shape[1]
    C, CA, CAC, tr_ac, risk = _covariance_products(rho, Q)
    first = tr_ac * C + 2 * CAC     # E[(y - yhat) z z^T]
    second = risk * C + 4 * tr_ac * CAC + 8 * CA @ CAC   # E[(y - yhat)^2 z z^T]
    drho = 4 / p * first[ps:, :ps]
    dQ = 8 / p * first[ps:, ps:] + eta * 16 / p ** 2 * second[ps:, ps:]
    return drho, dQ


def matrix_risk(rho, Q):
    """The population risk E (y - yhat)^2 at overlaps rho, Q (float64)."""
    return _covariance_products(*_overlaps(rho, Q))[4]


def _matrix_ode(rho0, Q0, eta):
    """(y0, rhs(t, y), unpack) of the matrix-form ODE on the flat state (rho, Q)."""
    rho0, Q0 = _overlaps(rho0, Q0)
    if not np.isfinite(float(eta)) or eta < 0:
        raise ExactdynError(f"eta must be finite and >= 0, got {eta}")
    p, ps = rho0.shape

    def unpack(y):
        return y[:p * ps].reshape(p, ps), y[p * ps:].reshape(p, p)

    def rhs(_, y):
        drho, dQ = matrix_rhs(*unpack(y), eta)
        return np.concatenate([drho.ravel(), dQ.ravel()])

    return np.concatenate([rho0.ravel(), Q0.ravel()]), rhs, unpack


def matrix_trajectory(rho0, Q0, t, *, eta=0.0, rtol=1e-10, atol=1e-13):
    """rho(t), Q(t) and the risk along the matrix-form ODE (eta^2 terms included for eta > 0) at the
    times t = eta alpha, float64 DOP853: `trajectory` without building the derived system."""
    from scipy.integrate import solve_ivp

    t = np.asarray(t, float)
    if t.ndim != 1 or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ExactdynError("t must be increasing and >= 0")
    y0, rhs, unpack = _matrix_ode(rho0, Q0, eta)
    sol = solve_ivp(rhs, (0.0, t[-1]), y0, method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    if sol.status != 0 or not np.all(np.isfinite(sol.y)):
        raise ExactdynError(f"the integration failed ({sol.message}); is eta too large?")
    states = [unpack(y) for y in sol.y.T]
    return (np.array([r for r, _ in states]), np.array([q for _, q in states]),
            np.array([matrix_risk(r, q) for r, q in states]))


def half_risk_time(rho0, Q0, eta, *, t_max=1e3, rtol=1e-9, atol=1e-12):
    """The time t = eta alpha at which the risk along the ODE (eta^2 terms included) first falls to
    half its initial value; inf when it does not by t_max (stuck, or diverging: eta too large)."""
    from scipy.integrate import solve_ivp

    y0, rhs, unpack = _matrix_ode(rho0, Q0, eta)
    target = matrix_risk(*unpack(y0)) / 2

    def halved(_, y):
        return matrix_risk(*unpack(y)) - target

    def blown(_, y):  # past the stability limit the norms run away
        return 1e3 - np.abs(y).max()

    halved.terminal = blown.terminal = True
    halved.direction = -1
    sol = solve_ivp(rhs, (0.0, t_max), y0, method="DOP853", events=[halved, blown], rtol=rtol, atol=atol)
    return float(sol.t_events[0][0]) if len(sol.t_events[0]) else np.inf


def optimal_learning_rate(eta, alpha_c):
    """The learning rate minimising alpha_c (mean over initial states, columns of `alpha_c`) on a grid
    `eta`: (eta_opt, index of the grid minimum, interpolation error).  eta_opt is the vertex of the
    parabola through the grid minimum and its two neighbours; the error is the largest shift of that
    vertex when the parabola is fitted instead to the 4 or 5 nearest points.  An ExactdynError when the
    minimum lies on the grid's edge."""
    eta, mean = np.asarray(eta, float), np.asarray(alpha_c, float).mean(axis=-1)
    i = int(np.argmin(mean))
    if not 0 < i < len(eta) - 1 or not np.all(np.isfinite(mean[i - 1:i + 2])):
        raise ExactdynError("the smallest alpha_c lies on the edge of the eta grid: widen the grid")

    def vertex(lo, hi):
        a, b, _ = np.polyfit(eta[lo:hi], mean[lo:hi], 2)
        return -b / (2 * a)

    best = vertex(i - 1, i + 2)
    others = [vertex(lo, hi) for lo, hi in ((i - 2, i + 2), (i - 1, i + 3), (i - 2, i + 3))
              if lo >= 0 and hi <= len(eta) and np.all(np.isfinite(mean[lo:hi]))]
    return best, i, max((abs(v - best) for v in others), default=0.0)


# --- the closest solution, in the weights ----------------------------------------------------------

def solution_distance(rho0, Q0, S):
    """|W_S - W(0)|^2 / N for the zero-error point W_S = sqrt(p/p*) S W* (S^T S = I, W* orthonormal
    rows of norm sqrt(N)), from the initial overlaps: p + tr Q0 - 2 sqrt(p/p*) tr(S^T rho0)."""
    rho0, Q0, S = (np.asarray(x, float) for x in (rho0, Q0, S))
    p, ps = rho0.shape
    if S.shape != (p, ps) or not np.allclose(S.T @ S, np.eye(ps), atol=1e-10):
        raise ExactdynError(f"S must be {p} x {ps} with orthonormal columns")
    return p + float(np.trace(Q0)) - 2 * np.sqrt(p / ps) * float(np.sum(S * rho0))


def _weights(W, Wstar):
    W, Wstar = np.asarray(W, float), np.asarray(Wstar, float)
    if W.ndim != 2 or Wstar.ndim != 2 or W.shape[1] != Wstar.shape[1]:
        raise ExactdynError(f"W must be p x N and W* p* x N, got {W.shape} and {Wstar.shape}")
    return W, Wstar


def weight_gradient(W, Wstar):
    """dR/dW of the population risk in the weights (rows of W* orthonormal, unit norm):
    R = (tr A)^2 + 2 tr A^2 with A = W^T W / p - W*^T W* / p*, so dR/dW = (4/p)(tr A W + 2 W A)."""
    W, Wstar = _weights(W, Wstar)
    A = W.T @ W / W.shape[0] - Wstar.T @ Wstar / Wstar.shape[0]
    return 4 / W.shape[0] * (np.trace(A) * W + 2 * W @ A)


def weight_flow(W0, Wstar, t, *, rtol=1e-11, atol=1e-14):
    """W(t) along dW/dt = -dR/dW (the gradient flow of the overlap ODE in t = eta alpha, in
    units where the teacher rows have unit norm): an array over t, float64 LSODA (the approach to
    the solution manifold is algebraic, its transverse modes fast: stiff at late times)."""
    from scipy.integrate import solve_ivp

    W0, Wstar = _weights(W0, Wstar)
    t = np.asarray(t, float)
    if t.ndim != 1 or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ExactdynError("t must be increasing and >= 0")
    sol = solve_ivp(lambda _, w: -weight_gradient(w.reshape(W0.shape), Wstar).ravel(), (0.0, t[-1]),
                    W0.ravel(), method="LSODA", t_eval=t, rtol=rtol, atol=atol)
    if sol.status != 0:
        raise ExactdynError(f"the integration failed ({sol.message})")
    return sol.y.T.reshape(len(t), *W0.shape)
