"""What a user asks exactdyn to solve (Problem, InitialState) and what comes back (Solution).

All three are frozen.  Numbers are kept exact (Fractions; a float in a drawn state stands for its
exact binary value) until the numeric layer rounds them once, at the working precision.
"""
from dataclasses import dataclass, field
import enum
from fractions import Fraction

import flint
import mpmath
import numpy as np

from .errors import ExactdynError
from .numbers import to_fraction
from .spectrum import Spectrum, isotropic
from .symbolic.conventions import MAX_WIDTH, OUTPUT_WEIGHTS
from .symbolic.expectations import Activation, Polynomial, activation_from_name
from .symbolic.hierarchy import Structure


def exact(x):
    """An exact Fraction from fmpq, an exact-midpoint arb, int, Fraction or float (binary value)."""
    if isinstance(x, flint.fmpq):
        return Fraction(int(x.p), int(x.q))
    if isinstance(x, flint.arb):
        mantissa, exponent = x.mid().man_exp()
        return Fraction(int(mantissa)) * Fraction(2) ** int(exponent)
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise ExactdynError(f"overlaps must be finite, got {x!r}")
        return Fraction(x)
    return to_fraction(x, "an overlap")


MAX_DRAW = 10 ** 8  # floats in one drawn B and J (N x (K + M)): 800 MB


def check_seed(seed):
    """A numpy seed: a whole number >= 0 (numpy itself would fail with a bare ValueError or TypeError)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 128:
        raise ExactdynError(f"seed must be a whole number >= 0, got {seed!r}")
    return seed


def _activation(value):
    if isinstance(value, str):
        return activation_from_name(value)
    if isinstance(value, (tuple, list)):
        return Polynomial(tuple(value))
    if not isinstance(value, Activation):
        raise ExactdynError(f"activation must be a name, polynomial coefficients or an Activation, got {value!r}")
    return value


@dataclass(frozen=True)
class Problem:
    """A teacher-student setup: activation, widths K (student) and M (teacher), input spectrum,
    learning rate eta, output-weight conventions ('one', 'sqrt', 'mean') and the loss
    ``loss_factor * (sigma - zeta)^2`` (1/2 in the committee-machine papers)."""

    activation: object
    K: int
    M: int
    spectrum: Spectrum = field(default_factory=isotropic)
    eta: object = Fraction(1, 2)
    output_weights: str = "one"
    teacher_output_weights: str = None
    loss_factor: object = Fraction(1, 2)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("activation", _activation(self.activation))
        for name in ("K", "M"):
            width = getattr(self, name)
            if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
                raise ExactdynError(f"{name} must be a whole number from 1 to {MAX_WIDTH}, got {width!r}")
        if not isinstance(self.spectrum, Spectrum):
            raise ExactdynError("spectrum must be an exactdyn Spectrum (power_law, from_eigenvalues, isotropic)")
        eta = to_fraction(self.eta, "eta")
        if eta <= 0:
            raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
        set_("eta", eta)
        set_("teacher_output_weights", self.teacher_output_weights or self.output_weights)
        for conv in (self.output_weights, self.teacher_output_weights):
            if conv not in OUTPUT_WEIGHTS:
                raise ExactdynError(f"output weights must be one of {', '.join(OUTPUT_WEIGHTS)}, got {conv!r}")
        loss = to_fraction(self.loss_factor, "loss factor")
        if loss <= 0:
            raise ExactdynError(f"the loss factor must be positive, got {loss}")
        set_("loss_factor", loss)

    @classmethod
    def quadratic_paper(cls, K, M, **kwargs):
        """The quadratic-network paper's setup: g(x) = x^2, mean output weights, loss without 1/2."""
        kwargs.setdefault("output_weights", "mean")
        kwargs.setdefault("loss_factor", 1)
        return cls(Polynomial((0, 0, 1)), K, M, **kwargs)

    @classmethod
    def named(cls, activation, K, M, spectrum=None, eta=Fraction(1, 2), output_weights=None, loss_factor=None):
        """The papers' conventions by activation name (Structure.named): 'quadratic' has mean output
        weights and loss (sigma - zeta)^2, every other name weights one and loss (sigma - zeta)^2 / 2."""
        s = Structure.named(activation, K, M, 1, output_weights, loss_factor)
        return cls(s.activation, K, M, spectrum or isotropic(), eta, s.output_weights, s.teacher_output_weights,
                   s.loss_factor)

    @property
    def L(self):
        return self.spectrum.L

    @property
    def structure(self):
        """What the derivation depends on (eta and the spectrum stay symbols there)."""
        return Structure(self.activation, self.K, self.M, self.L, self.output_weights,
                         self.teacher_output_weights, self.loss_factor)

    @property
    def is_linear(self):
        return isinstance(self.activation, Polynomial) and self.activation.degree == 1


def _matrices(blocks, L, rows, cols, name):
    if not isinstance(blocks, (list, tuple)) or len(blocks) != L:
        raise ExactdynError(f"{name} must hold {L} matrices (one per eigenvalue group)")
    out = []
    for k, mat in enumerate(blocks):
        arr = np.asarray(mat, dtype=object)
        if arr.shape != (rows, cols):
            raise ExactdynError(f"{name}[{k}] must be a {rows} x {cols} matrix, got shape {arr.shape}")
        out.append(tuple(tuple(exact(x) for x in row) for row in arr))
    return tuple(out)


@dataclass(frozen=True)
class InitialState:
    """Overlaps per eigenvalue group k: r[k] = J P_k B^T / N (K x M), q[k] = J P_k J^T / N (K x K),
    t[k] = B P_k B^T / N (M x M), exact; ``spectrum`` is set when the state came with one (a file)."""

    r: tuple
    q: tuple
    t: tuple
    spectrum: Spectrum = None

    def __post_init__(self):
        L = len(self.r) if isinstance(self.r, (list, tuple)) else 0
        if L == 0 or not len(self.r[0]) or not len(self.r[0][0]):
            raise ExactdynError("r must be a non-empty list of K x M matrices, one per eigenvalue group")
        K, M = len(self.r[0]), len(self.r[0][0])
        object.__setattr__(self, "r", _matrices(self.r, L, K, M, "r"))
        object.__setattr__(self, "q", _matrices(self.q, L, K, K, "q"))
        object.__setattr__(self, "t", _matrices(self.t, L, M, M, "t"))
        for k in range(L):
            _check_group(self.r[k], self.q[k], self.t[k], k)

    @property
    def L(self):
        return len(self.r)

    @property
    def K(self):
        return len(self.r[0])

    @property
    def M(self):
        return len(self.r[0][0])

    @classmethod
    def expected(cls, problem, sigma_J=0, *, perturbation=Fraction(1, 1000), seed=0):
        """The average over B ~ N(0, I), J ~ N(0, sigma_J^2 I): q^k = rho_k sigma_J^2 I, t^k = rho_k I,
        r^k = 0, plus (nonlinear students only) a seeded r^k = rho_k * perturbation * N(0, 1), without
        which the symmetric subspace is invariant and the students never specialise."""
        if not isinstance(problem, Problem):
            raise ExactdynError("InitialState.expected needs an exactdyn Problem")
        s2 = to_fraction(sigma_J, "sigma_J") ** 2
        if to_fraction(sigma_J, "sigma_J") < 0:
            raise ExactdynError(f"sigma_J must be >= 0, got {sigma_J}")
        rng = np.random.default_rng(check_seed(seed))
        K, M = problem.K, problem.M
        eye = lambda n, c: [[c if i == j else 0 for j in range(n)] for i in range(n)]
        rho = [exact(w) for w in problem.spectrum.weights]
        kick = 0 if problem.is_linear else to_fraction(perturbation, "perturbation")
        if kick and not s2:
            raise ExactdynError("a nonlinear student started at J = 0 (sigma_J = 0) cannot carry the symmetry-"
                                "breaking r^k: give sigma_J > 0")
        r = [[[f * kick * Fraction(x) for x in row] for row in rng.normal(size=(K, M))] for f in rho]
        return cls(r, [eye(K, f * s2) for f in rho], [eye(M, f) for f in rho])

    @classmethod
    def draw(cls, problem, N, seed=0, sigma_J=0):
        """The overlaps of one draw B ~ N(0, I_N), J ~ N(0, sigma_J^2 I_N) (as `simulate` draws them)."""
        from .simulate.sgd import group_sizes

        if not isinstance(problem, Problem):
            raise ExactdynError("InitialState.draw needs an exactdyn Problem")
        if isinstance(N, bool) or not isinstance(N, int) or N < 1:
            raise ExactdynError(f"N must be a whole number >= 1, got {N!r}")
        if N * (problem.K + problem.M) > MAX_DRAW:
            raise ExactdynError(f"N = {N} is too large to draw {problem.K + problem.M} weight vectors in memory "
                                f"(N x (K + M) at most {MAX_DRAW})")
        sigma = float(to_fraction(sigma_J, "sigma_J"))
        if sigma < 0:
            raise ExactdynError(f"sigma_J must be >= 0, got {sigma_J}")
        sizes = group_sizes([float(exact(w)) for w in problem.spectrum.weights], N)
        rng = np.random.default_rng(check_seed(seed))
        B = rng.normal(size=(problem.M, N))
        J = sigma * rng.normal(size=(problem.K, N))
        edges = np.cumsum([0] + sizes)
        blocks = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        return cls([J[:, s] @ B[:, s].T / N for s in blocks], [J[:, s] @ J[:, s].T / N for s in blocks],
                   [B[:, s] @ B[:, s].T / N for s in blocks])

    @classmethod
    def from_file(cls, path):
        """An initial-overlap JSON file (it defines the spectrum too: see exactdyn.io.initfile)."""
        from .io.initfile import read_initial

        init = read_initial(path)
        return cls(init.r, init.q, init.t, init.spectrum)

    def check_fits(self, problem):
        if (self.L, self.K, self.M) != (problem.L, problem.K, problem.M):
            raise ExactdynError(f"the initial overlaps are {self.K} x {self.M} in {self.L} group(s), the "
                                f"problem's {problem.K} x {problem.M} in {problem.L}")
        if self.spectrum is not None and self.spectrum.exact and problem.spectrum.exact and \
                tuple(self.spectrum.eigenvalues) != tuple(problem.spectrum.eigenvalues):
            raise ExactdynError("the initial state's spectrum differs from the problem's")

    def error_overlaps(self):
        """d^k = (J - B) P_k (J - B) / N of a K = M = 1 state (the linear solver's variables)."""
        return tuple(q[0][0] - 2 * r[0][0] + t[0][0] for r, q, t in zip(self.r, self.q, self.t))


def _check_group(r, q, t, k):
    """Overlaps of real weights: q and t symmetric, the joint Gram matrix positive semi-definite."""
    for name, mat in (("q", q), ("t", t)):
        if any(mat[i][j] != mat[j][i] for i in range(len(mat)) for j in range(i)):
            raise ExactdynError(f"{name}[{k}] must be symmetric")
    gram = np.block([[np.array(q, float), np.array(r, float)], [np.array(r, float).T, np.array(t, float)]])
    if not np.all(np.isfinite(gram)):
        raise ExactdynError(f"the overlaps of group {k} are not finite")
    lowest = gram_lowest(gram)
    if lowest is not None:
        raise ExactdynError(f"the overlaps of group {k} are not those of real weights (their Gram matrix has "
                            f"eigenvalue {lowest:.3g} < 0: Cauchy-Schwarz is violated)")


def gram_lowest(matrix):
    """The lowest eigenvalue of a symmetric overlap matrix when it is negative beyond rounding (the
    overlaps are then those of no real vectors), else None."""
    matrix = np.asarray(matrix, dtype=float)
    lowest = np.linalg.eigvalsh(matrix)[0]
    return lowest if lowest < -1e-9 * max(1.0, np.abs(matrix).max()) else None


class Status(enum.Enum):
    OK = "ok"                  # every point carries the digits asked for
    PARTIAL = "partial"        # some points could not be vouched for (their digits are 0)
    UNSTABLE = "unstable"      # eta past the stability limit: the error grows (linear networks)


@dataclass(frozen=True)
class Solution:
    """eps_g(alpha) with the digits each value can be vouched for.

    ``rigorous`` is True only for ball-certified values (the linear solver); otherwise the digits
    are *verified*: two independent runs (more precision, a tighter tolerance) agree on them.
    ``digits[i]`` is 0 for a point that cannot be vouched for.  ``bits`` is the working precision
    (53 for float64).  ``overlaps``: per alpha, state name -> value (when asked for).
    """

    alpha: tuple
    eps_g: tuple
    digits: tuple
    rigorous: bool
    status: Status
    message: str
    method: str
    bits: int
    overlaps: tuple = None
    stats: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.status is Status.OK

    def decimals(self):
        """eps_g as decimal strings with each point's own digits (None where none can be vouched for)."""
        out = []
        for value, d in zip(self.eps_g, self.digits):
            if d <= 0:
                out.append(None)
            elif isinstance(value, flint.arb):
                out.append(value.str(d, radius=False))
            else:
                with mpmath.workprec(max(self.bits, 53) + 10):
                    out.append(mpmath.nstr(mpmath.mpf(value), d, min_fixed=-3, max_fixed=3))
        return out

    def floats(self):
        return [float(v.mid()) if isinstance(v, flint.arb) else float(v) for v in self.eps_g]
