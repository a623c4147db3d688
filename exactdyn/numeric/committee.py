"""Nonlinear committee machines (erf and polynomial activations): float64 trajectories.

The eigenmode system from the derivation engine is compiled once and integrated with scipy's
DOP853 under error control; a second integration at a 100x tighter tolerance tells how many
digits of eps_g can be vouched for.
"""
from dataclasses import dataclass
import math
import time

import numpy as np
from scipy.integrate import solve_ivp

from ..symbolic.cache import derive
from .compiled import compile_system
from ..errors import ExactdynError
from ..io.initfile import InitialOverlaps
from .overlaps import assign, overlap_table


@dataclass(frozen=True)
class Trajectory:
    """eps_g at each alpha (floats) with the digits both tolerances agree on; overlaps per group."""

    alpha: tuple
    eps_g: tuple
    verified_digits: int
    overlaps: tuple  # per alpha: {state name: value}
    status: str
    seconds: float


def expected_initial(eigenvalues, fractions, K, M, sigma_J, perturbation=1e-3, seed=0):
    """Averages over B ~ N(0, I), J ~ N(0, sigma_J^2 I): q^k = rho_k sigma_J^2 I, t^k = rho_k I, r^k = 0,
    plus a symmetry-breaking r^k_{in} = rho_k * perturbation * (seeded standard normal), without which
    the symmetric subspace is invariant and the students never specialise."""
    rng = np.random.default_rng(seed)
    L = len(eigenvalues)
    r = [(f * perturbation * rng.normal(size=(K, M))).tolist() for f in fractions]
    q = [(f * sigma_J ** 2 * np.eye(K)).tolist() for f in fractions]
    t = [(f * np.eye(M)).tolist() for f in fractions]
    return list(eigenvalues), list(fractions), r, q, t, L


def finite_n_initial(eigenvalues, fractions, K, M, N, seed, sigma_J):
    """Overlaps of an actual draw B ~ N(0, I_N), J ~ N(0, sigma_J^2 I_N) (as `simulate` draws them)."""
    from ..simulate.sgd import group_sizes

    sizes = group_sizes(fractions, N)
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(M, N))
    J = sigma_J * rng.normal(size=(K, N))
    edges = np.cumsum([0] + sizes)
    blocks = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
    r = [(J[:, s] @ B[:, s].T / N).tolist() for s in blocks]
    q = [(J[:, s] @ J[:, s].T / N).tolist() for s in blocks]
    t = [(B[:, s] @ B[:, s].T / N).tolist() for s in blocks]
    return list(eigenvalues), list(fractions), r, q, t, len(eigenvalues)


def from_file(init: InitialOverlaps):
    nested = lambda blocks: [[[float(x) for x in row] for row in mat] for mat in blocks]
    return (*init.spectrum.floats(), nested(init.r), nested(init.q), nested(init.t), init.spectrum.L)


def integrate(structure, initial, eta, alpha, *, rtol=1e-9, atol=1e-12, verify=True, system=None):
    """eps_g(alpha) of `structure` (its L must match the initial state's groups) from `initial`
    = (eigenvalues, fractions, r, q, t, L), float64, error-controlled.  `system` replaces the
    structure's derived eigenmode system (one with the same symbols, e.g. a modified one)."""
    started = time.perf_counter()
    lam, frac, r, q, t, L = initial
    if L != structure.L:
        raise ExactdynError(f"the initial state has {L} eigenvalue groups, the model {structure.L}")
    if len(r[0]) != structure.K or len(r[0][0]) != structure.M:
        raise ExactdynError(f"the initial overlaps are {len(r[0])} x {len(r[0][0])}, the model "
                            f"{structure.K} x {structure.M}")
    alpha = [float(a) for a in alpha]
    if any(not math.isfinite(a) or a < 0 for a in alpha) or alpha != sorted(alpha):
        raise ExactdynError("alpha must be finite, >= 0 and increasing")
    if not math.isfinite(float(eta)) or float(eta) <= 0:
        raise ExactdynError("the learning rate eta must be positive")
    system = system or derive(structure, "mode")
    f = compile_system(system, "float")
    table = overlap_table(lam, frac, r, q, t, float(eta))
    y0, params = assign(system, table)

    def run(tol):
        sol = solve_ivp(lambda _, y: f.rhs(y, params), (0.0, alpha[-1]), np.array(y0, float), method="DOP853",
                        t_eval=alpha, rtol=tol, atol=atol * tol / rtol)
        if sol.status != 0 or not np.all(np.isfinite(sol.y)):
            raise ExactdynError(f"the integration failed ({sol.message}); is eta past the stability limit?")
        return sol.y.T

    states = run(rtol)
    eps = np.array([f.eps_g(s, params) for s in states])
    digits = 15
    if verify:
        tight = run(rtol / 100)
        eps_tight = np.array([f.eps_g(s, params) for s in tight])
        diff = np.max(np.abs(eps - eps_tight) / np.maximum(np.abs(eps_tight), 1e-300))
        digits = int(max(0, min(15, math.floor(-math.log10(diff)) if diff > 0 else 15)))
        eps = eps_tight
        states = tight
    names = [str(s) for s in system.states]
    overlaps = tuple(dict(zip(names, s.tolist())) for s in states)
    status = "ok" if np.all(np.isfinite(eps)) else "diverged"
    return Trajectory(tuple(alpha), tuple(eps.tolist()), digits, overlaps, status, time.perf_counter() - started)


def plateau(alpha, eps):
    """(start, height, length) of the first plateau of a learning curve sampled on a grid.

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


def first_below(structure, initial, eta, level, alpha_max, *, step=50.0):
    """(alpha, overlaps, eps_g) at the first point of a grid of spacing `step` where eps_g < level
    (float64, rtol 1e-12: the state a late-time expansion starts from)."""
    grid = np.arange(0.0, float(alpha_max) + step, step)
    run = integrate(structure, initial, eta, grid, verify=False, rtol=1e-12)
    below = np.nonzero(np.array(run.eps_g) < level)[0]
    if below.size == 0:
        raise ExactdynError(f"eps_g stays above {level:g} up to alpha = {alpha_max:g} (min {min(run.eps_g):.3g}): "
                            "raise --alpha-max or --from-eps")
    i = int(below[0])
    return float(grid[i]), run.overlaps[i], float(run.eps_g[i])
