"""Learning curves on disk: what `solve` and `simulate` write (JSON, CSV, text) and `plot` reads back.

A Solution's points carry their own digits; a point with none is written as "unverified" (text,
CSV) or null (JSON).  The words follow the Solution: *certified* (ball arithmetic) when
``rigorous``, else *verified* (two independent runs agree) or what ``stats["digits_from"]`` says.
"""
import json
import math

import flint
import numpy as np

from ..errors import ExactdynError
from ..numeric.certify import ball_digits
from .files import finite, increasing_alpha, parse_json, read_text

# top-level keys of a `solve` JSON output besides alpha, eps_g, metadata and overlaps
SOLVE_KEYS = {"digits", "rigorous", "status", "method", "working_precision_bits", "message"}
# metadata keys `solve` and `simulate` write (older outputs' keys included) that a check does not need
INFORMATIONAL_KEYS = {
    "sigma_J", "init_seed", "spectrum", "initial_state", "seconds", "steps", "rhs_evaluations", "digits_from",
    "stability_limit", "trainable", "eps_g_limit", "small_eta", "small_eta_relative_error", "integral",
    "integral_relative_error", "power_law_window", "local_exponent", "random_subspace", "input_dimension",
    "trainable_dimension", "draws", "eps_g_stderr", "eps_g_limit_per_draw", "eps_g_limit_N_infinity_small_eta",
    "route", "working_precision_bits", "digits", "stable", "status", "verified_digits"}
UNVERIFIED = "unverified"


def problem_metadata(problem):
    """The configuration of a Problem as `check` reads it back."""
    return {"activation": problem.activation.name, "K": problem.K, "M": problem.M, "L": problem.L,
            "spectrum": problem.spectrum.label, "eta": str(problem.eta), "output_weights": problem.output_weights}


def _jsonable(key, value):
    if isinstance(value, flint.arb):
        digits = ball_digits(value)
        return value.str(15 if digits is None else min(15, max(digits, 1)), radius=False)
    if isinstance(value, float):
        return round(value, 3) if key == "seconds" else value
    return value


def digits_label(solution):
    if solution.rigorous:
        return "certified digits: ball arithmetic"
    return solution.stats.get("digits_from", "verified digits: two independent runs agree")


def _overlap_arrays(solution, problem):
    """Per-alpha overlaps r [A][L][K][M] and q [A][L][K][K] from the Solution's named states."""
    K, M, L = problem.K, problem.M, problem.L
    r = [[[[float(s[f"r{k}_{i}_{n}"]) for n in range(1, M + 1)] for i in range(1, K + 1)] for k in range(1, L + 1)]
         for s in solution.overlaps]
    q = [[[[float(s[f"q{k}_{min(i, j)}_{max(i, j)}"]) for j in range(1, K + 1)] for i in range(1, K + 1)]
          for k in range(1, L + 1)] for s in solution.overlaps]
    return {"r": r, "q": q}


def write_solution(out, solution, problem, fmt, info=None):
    """A Solution as JSON (per-point digits, status, method), CSV (alpha, eps_g) or a text table."""
    values = [UNVERIFIED if v is None else v for v in solution.decimals()]
    alpha = [str(a) for a in solution.alpha]
    meta = {**problem_metadata(problem), **(info or {}),
            **{k: _jsonable(k, v) for k, v in solution.stats.items()}}
    if fmt == "json":
        data = {"alpha": alpha, "eps_g": solution.decimals(), "digits": list(solution.digits),
                "rigorous": solution.rigorous, "status": solution.status.value, "method": solution.method,
                "working_precision_bits": solution.bits, "message": solution.message, "metadata": meta}
        if solution.overlaps is not None:
            data["overlaps"] = _overlap_arrays(solution, problem)
        out.write(json.dumps(data, indent=1) + "\n")
    elif fmt == "csv":
        out.write("alpha,eps_g\n" + "".join(f"{a},{e}\n" for a, e in zip(alpha, values)))
    else:
        head = {"method": solution.method, "status": solution.status.value, "working_precision_bits": solution.bits}
        out.write("".join(f"# {k}: {v}\n" for k, v in {**meta, **head}.items()))
        out.write(f"{'alpha':>14}  eps_g ({digits_label(solution)})\n")
        out.write("".join(f"{a:>14}  {e}\n" for a, e in zip(alpha, values)))


def initial_records(simulation):
    """Each seed's initial overlaps in the init-file format (`solve --init` starts from them)."""
    lam, frac = list(simulation.eigenvalues), list(simulation.fractions)
    return [{"eigenvalues": lam, "weights": frac, "r": simulation.r[0, s].tolist(), "q": simulation.q[0, s].tolist(),
             "t": simulation.t[s].tolist()} for s in range(len(simulation.seeds))]


def write_simulation(out, curve, problem, fmt, info=None, overlaps=False):
    """A simulated curve (exactdyn.simulate.sgd.SimulatedCurve) as JSON, in the format `check` reads,
    or CSV (alpha, eps_g, eps_g_stderr)."""
    sim = curve.simulation
    stderr = curve.stderr
    if fmt != "json":
        out.write("alpha,eps_g,eps_g_stderr\n" + "".join(f"{a},{float(m)!r},{float(e)!r}\n"
                                                         for a, m, e in zip(sim.alpha, curve.mean, stderr)))
        return
    meta = {**problem_metadata(problem), "N": sim.N, "seeds": list(sim.seeds), **(info or {})}
    data = {"alpha": list(sim.alpha), "eps_g": curve.mean.tolist(),
            "eps_g_stderr": [None if np.isnan(e) else float(e) for e in stderr],
            "eps_g_seeds": curve.eps_g.tolist(), "initial": initial_records(sim), "metadata": meta}
    if overlaps:
        data["overlaps"] = {"r": sim.r.mean(1).tolist(), "q": sim.q.mean(1).tolist()}
    out.write(json.dumps(data, indent=1) + "\n")


def _curve_numbers(data, path, alpha):
    """eps_g (unverified points, null, as NaN) and eps_g_stderr (null as 0) of a curve file."""
    if len(data["eps_g"]) != len(alpha):
        raise ExactdynError(f"{path}: eps_g has {len(data['eps_g'])} entries, alpha {len(alpha)}")
    eps = [math.nan if e is None else finite(e, f"{path}: eps_g[{i}]") for i, e in enumerate(data["eps_g"])]
    stderr = data.get("eps_g_stderr")
    if stderr is not None:
        if not isinstance(stderr, list) or len(stderr) != len(alpha):
            raise ExactdynError(f"{path}: eps_g_stderr must be a list as long as alpha")
        stderr = [0.0 if s is None else finite(s, f"{path}: eps_g_stderr[{i}]") for i, s in enumerate(stderr)]
    return eps, stderr


def read_curve(path):
    """(label, alpha, eps_g, stderr or None) from a `solve` or `simulate` JSON output."""
    data = parse_json(read_text(path), path)
    if not isinstance(data, dict) or not isinstance(data.get("alpha"), list) or not isinstance(data.get("eps_g"), list):
        raise ExactdynError(f"{path} has no 'alpha' and 'eps_g' lists (a solve or simulate JSON output)")
    alpha = increasing_alpha([finite(a, f"{path}: alpha[{i}]") for i, a in enumerate(data["alpha"])])
    eps, stderr = _curve_numbers(data, path, alpha)
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    parts = [str(meta[k]) if k == "activation" else f"{k}={meta[k]}" for k in ("activation", "L", "eta", "N")
             if k in meta]
    label = ", ".join(parts) or str(path)
    label = f"SGD {label}" if "N" in meta else f"exactdyn {label}"
    return label, alpha, eps, stderr


def _title(problem):
    return (f"{problem.activation.name}, K={problem.K}, M={problem.M}, {problem.spectrum.label}, "
            f"eta={problem.eta}")


def plot_solution(solution, problem, path):
    """A log-log plot of the points the Solution vouches for."""
    from .plotting import plot_curves

    values = [v if d > 0 else math.nan for v, d in zip(solution.floats(), solution.digits)]
    plot_curves([(f"exactdyn ({solution.method})", solution.alpha, values)], path, title=_title(problem))


def plot_simulation(curve, problem, path):
    """The SGD mean with its standard-error band."""
    from .plotting import plot_curves

    sim = curve.simulation
    band = (f"SGD, N={sim.N}, {len(sim.seeds)} seeds", sim.alpha, curve.mean, np.nan_to_num(curve.stderr))
    plot_curves([], path, bands=[band], title=_title(problem))
