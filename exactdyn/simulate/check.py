"""`exactdyn check`: compare a trajectory written by any code with exactdyn's prediction.

The file gives alpha, any of eps_g (with its standard error), the first-order overlaps
R1 = sum_k lam_k r^k and Q1, the per-group overlaps r^k, q^k, and its own initial state
(init-file objects, one per seed, or `--init`).  exactdyn solves the derived eigenmode system
from each initial state (`solve`, float64, verified) and averages over them.  Files from a
finite-N simulation (N given) are judged in units of the expected O(1/sqrt N) fluctuation; files
without N (another ODE code) by their relative deviation.  File formats: exactdyn.io.trajectories.
"""
from dataclasses import dataclass
import math
import re

import numpy as np

from ..errors import ExactdynError
from ..io.trajectories import read_trajectory


@dataclass(frozen=True)
class Row:
    quantity: str  # eps_g, R1, Q1, r or q
    points: int
    largest_deviation: float
    element: str
    at_alpha: float
    units: float  # largest deviation in fluctuation units (finite N) or relative (no N)
    unit: str
    ok: bool


@dataclass(frozen=True)
class CheckReport:
    rows: tuple
    consistent: bool
    mode: str  # "finite-N" or "deterministic"
    threshold: float
    vouched_digits: int


# --- prediction and comparison ------------------------------------------------------------------

def check(path, options=None, init=None, *, threshold=5.0, rtol=1e-6):
    """Read the trajectory file at `path` (options: configuration from the command line; init: an
    InitialOverlaps for a file without one) and compare it: (TrajectoryFile, CheckReport)."""
    for name, value in (("threshold", threshold), ("rtol", rtol)):
        if not math.isfinite(value) or value <= 0:
            raise ExactdynError(f"--{name} must be a positive number, got {value}")
    traj = read_trajectory(path, options, init)
    return traj, compare(traj, threshold=threshold, rtol=rtol)


def predict(traj):
    """exactdyn's series for every quantity in the file, averaged over the file's initial states,
    and the number of digits the float64 integration vouches for (the fewest over points and runs)."""
    from ..problem import InitialState, Problem
    from ..solve import solve

    spectrum = traj.initial[0].spectrum
    problem = Problem.named(traj.activation, traj.K, traj.M, spectrum, traj.eta, traj.output_weights)
    lam, frac = spectrum.floats()
    total, digits, cache = None, 15, {}
    for init in traj.initial:
        key = (init.r, init.q, init.t)
        if key not in cache:
            sol = solve(problem, InitialState(init.r, init.q, init.t, spectrum), traj.alpha, method="float64",
                        overlaps=True)
            digits = min(digits, *sol.digits)
            cache[key] = _series_of(sol, traj, lam, frac)
        values = cache[key]
        total = values if total is None else {k: total[k] + v for k, v in values.items()}
    return {k: v / len(traj.initial) for k, v in total.items()}, digits


def _series_of(sol, traj, lam, frac):
    """eps_g, every r^k, q^k (both orders of q's indices), t^k, R1, Q1 along a solution."""
    K, M, L = traj.K, traj.M, traj.L
    get = lambda name: np.array([float(ov[name]) for ov in sol.overlaps])
    out = {"eps_g": np.array(sol.floats())}
    t = traj.initial[0].t
    for k in range(1, L + 1):
        for i in range(1, K + 1):
            for n in range(1, M + 1):
                out[f"r{k}_{i}_{n}"] = get(f"r{k}_{i}_{n}")
            for j in range(1, K + 1):
                out[f"q{k}_{i}_{j}"] = get(f"q{k}_{min(i, j)}_{max(i, j)}")
        for n in range(1, M + 1):
            for m in range(1, M + 1):
                out[f"t{k}_{n}_{m}"] = np.full(len(sol.alpha), float(t[k - 1][n - 1][m - 1]))
    for name, kind, cols in (("R1", "r", M), ("Q1", "q", K)):
        for i in range(1, K + 1):
            for j in range(1, cols + 1):
                out[f"{name}_{i}_{j}"] = sum(lam[k] * out[f"{kind}{k + 1}_{i}_{j}"] for k in range(L))
    out["_frac"] = np.array(frac)
    return out


def _fluctuation(name, pred, traj, lam, frac, stderr):
    """The expected finite-size fluctuation of each point of a series (N given).

    An overlap of group k sums rho_k N terms: its fluctuation is about sqrt(x_ii y_nn / (rho_k N S))
    for x_ii, y_nn the diagonal overlaps it pairs (Cauchy-Schwarz scale), S the seeds averaged;
    R1, Q1 add the groups' fluctuations in quadrature with weights lam_k.  eps_g: its standard
    error when the file gives one, else |eps_g| / sqrt(N S).  Every unit also allows the O(1/N)
    finite-size bias, |x(0)| / N."""
    NS = traj.N * traj.seeds

    def group_var(kind, k, i, j):
        a = pred[f"q{k}_{i}_{i}"]
        b = pred[f"t{k}_{j}_{j}"] if kind == "r" else pred[f"q{k}_{j}_{j}"]
        return np.abs(a * b) / (frac[k - 1] * NS)

    m = re.match(r"^(?:([rq])(\d+)|(R1|Q1))_(\d+)_(\d+)$", name)
    if name == "eps_g":
        if stderr is not None:
            base = np.where(np.isnan(np.asarray(stderr)), np.abs(pred[name]) / math.sqrt(NS), stderr)
        else:
            base = np.abs(pred[name]) / math.sqrt(NS)
        var = base ** 2
    elif m.group(1):
        var = group_var(m.group(1), int(m.group(2)), int(m.group(4)), int(m.group(5)))
    else:
        kind = "r" if m.group(3) == "R1" else "q"
        var = sum(lam[k] ** 2 * group_var(kind, k + 1, int(m.group(4)), int(m.group(5))) for k in range(traj.L))
    bias = abs(pred[name][0]) / traj.N
    return np.sqrt(var + bias ** 2 + 1e-300)


def compare(traj, *, threshold=5.0, rtol=1e-6, prediction=None):
    """A CheckReport: per quantity family the largest deviation, in fluctuation units (finite N,
    consistent below `threshold`) or relative to the prediction (no N, consistent below `rtol`,
    never below what the float64 integration vouches for)."""
    pred, digits = prediction or predict(traj)
    lam, frac = traj.initial[0].spectrum.floats()
    finite_n = traj.N is not None
    if not finite_n and digits < 1:
        raise ExactdynError("exactdyn could not verify a digit of its own prediction here")
    tol = threshold if finite_n else max(rtol, 10.0 ** (1 - digits))
    families = {}
    for name, values in traj.series.items():
        dev = np.abs(values - pred[name])
        if finite_n:
            units = dev / _fluctuation(name, pred, traj, lam, frac, traj.eps_g_stderr)
        else:
            scale = np.abs(pred[name]) if name == "eps_g" else np.max(np.abs(pred[name]))
            units = dev / np.maximum(scale, 1e-300)
        family = name if name == "eps_g" else name[:2] if name[:2] in ("R1", "Q1") else name[0]
        a = int(np.argmax(units))
        entry = (float(units[a]), float(dev[a]), name, traj.alpha[a])
        count, best = families.get(family, (0, None))
        families[family] = (count + len(values), entry if best is None or entry[0] > best[0] else best)
    rows = []
    for family in sorted(families, key=["eps_g", "R1", "Q1", "r", "q"].index):
        count, (units, dev, element, at) = families[family]
        label = ("its standard error" if family == "eps_g" and finite_n and traj.eps_g_stderr is not None
                 else "O(1/sqrt(N S)) fluctuation" if finite_n else "relative deviation")
        rows.append(Row(family, count, dev, element, at, units, label, units <= tol))
    return CheckReport(tuple(rows), all(r.ok for r in rows), "finite-N" if finite_n else "deterministic", tol, digits)


def format_report(path, traj, report):
    lines = [f"exactdyn check {path}: {traj.activation}, K = {traj.K}, M = {traj.M}, L = {traj.L}, "
             f"eta = {traj.eta}, output weights {traj.output_weights}"
             + (f", N = {traj.N}, {traj.seeds} seed(s)" if traj.N else ", no N (deterministic comparison)")]
    lines.append(f"{'quantity':<9}{'points':>7}  {'largest |dev|':>13}  {'element':<10}{'at alpha':>10}  "
                 f"{'in units':>10}  unit")
    for r in report.rows:
        lines.append(f"{r.quantity:<9}{r.points:>7}  {r.largest_deviation:>13.3e}  {r.element:<10}{r.at_alpha:>10.4g}  "
                     f"{r.units:>10.3g}  {r.unit}{'' if r.ok else '   <-- too large'}")
    rule = (f"units <= {report.threshold:g}" if report.mode == "finite-N"
            else f"relative deviation <= {report.threshold:.1e}; exactdyn vouches for {report.vouched_digits} digits")
    lines.append(f"verdict: {'consistent' if report.consistent else 'NOT consistent'} ({rule})")
    return "\n".join(lines) + "\n"


def report_json(traj, report):
    return {"consistent": report.consistent, "mode": report.mode, "threshold": report.threshold,
            "vouched_digits": report.vouched_digits,
            "rows": [{"quantity": r.quantity, "points": r.points, "largest_deviation": r.largest_deviation,
                      "element": r.element, "at_alpha": r.at_alpha, "units": r.units, "unit": r.unit, "ok": r.ok}
                     for r in report.rows]}

