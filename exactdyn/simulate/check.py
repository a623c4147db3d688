"""`exactdyn check`: compare a trajectory written by any code with exactdyn's prediction.

The file gives alpha, any of eps_g (with its standard error), the first-order overlaps
R1 = sum_k lam_k r^k and Q1, the per-group overlaps r^k, q^k, and its own initial state
(init-file objects, one per seed, or `--init`).  exactdyn integrates the derived eigenmode
system from each initial state and averages over them.  Files from a finite-N simulation
(N given) are judged in units of the expected O(1/sqrt N) fluctuation; files without N
(another ODE code) by their relative deviation.

JSON: {"alpha": [...], "eps_g": [...], "eps_g_stderr": [...], "eps_g_seeds": [[...]],
       "R1": [A][K][M], "Q1": [A][K][K], "overlaps": {"r": [A][L][K][M], "q": [A][L][K][K]},
       "initial": {init-file object} or [one per seed], "metadata" (or "config"): {...}}
CSV: columns alpha, eps_g, eps_g_stderr, R1_i_n, Q1_i_j, r{k}_i_n, q{k}_i_j (1-based),
     lines starting with '#' ignored; the configuration and initial state come from options.
"""
from dataclasses import dataclass
from fractions import Fraction
import csv
import io
import json
import math
import re

import numpy as np

from ..errors import ExactdynError
from ..numbers import to_fraction
from ..io.initfile import checked_size, parse_initial

CONFIG_KEYS = {"activation", "eta", "output_weights", "N", "seeds", "K", "M", "L"}
# keys `solve` and `simulate` write that a check does not need
INFORMATIONAL_KEYS = {"sigma_J", "init_seed", "spectrum", "route", "working_precision_bits", "digits",
                      "stability_limit", "stable", "status", "seconds", "verified_digits", "trainable",
                      "eps_g_limit"}
JSON_KEYS = {"alpha", "eps_g", "eps_g_stderr", "eps_g_seeds", "R1", "Q1", "overlaps", "initial", "metadata",
             "config"}
ACTIVATIONS = ("linear", "erf", "quadratic", "cubic")
_COLUMN = re.compile(r"^(?:(alpha|eps_g|eps_g_stderr)|(R1|Q1)_(\d+)_(\d+)|([rq])(\d+)_(\d+)_(\d+))$")
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RATIO = re.compile(r"^[+-]?\d+/[1-9]\d*$")


@dataclass(frozen=True)
class TrajectoryFile:
    """A parsed trajectory: series maps a quantity name (eps_g, R1_1_2, q3_1_1, ...) to its values."""

    alpha: tuple
    series: dict
    eps_g_stderr: tuple
    initial: tuple  # InitialOverlaps, one per seed
    activation: str
    output_weights: str
    eta: Fraction
    N: int
    seeds: int

    @property
    def K(self):
        return self.initial[0].K

    @property
    def M(self):
        return self.initial[0].M

    @property
    def L(self):
        return self.initial[0].spectrum.L


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


# --- reading ----------------------------------------------------------------------------------

def _finite(value, where):
    if isinstance(value, bool):
        raise ExactdynError(f"{where} must be a number, got a boolean")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str) and (_FLOAT.match(value.strip()) or _RATIO.match(value.strip())):
        x = float(value) if _FLOAT.match(value.strip()) else float(to_fraction(value))
    else:
        kind = "text " + repr(value)[:30] if isinstance(value, str) else type(value).__name__
        raise ExactdynError(f"{where} must be a number, got {kind}")
    if not math.isfinite(x):
        raise ExactdynError(f"{where} is not finite ({value!r})")
    return x


def _array(value, shape, where):
    """A nested list of finite numbers of exactly this shape, as a float array."""
    def walk(v, dims, path):
        if not dims:
            return _finite(v, f"{where}{path}")
        if not isinstance(v, list):
            raise ExactdynError(f"{where}{path} must be a list of {dims[0]}, got {type(v).__name__}")
        if len(v) != dims[0]:
            raise ExactdynError(f"{where}{path} has {len(v)} entries, expected {dims[0]}")
        return [walk(x, dims[1:], f"{path}[{i}]") for i, x in enumerate(v)]
    return np.array(walk(value, list(shape), ""), float).reshape(shape)


def _alpha(values):
    if len(values) == 0:
        raise ExactdynError("the trajectory has no alpha values")
    if any(a < 0 for a in values):
        raise ExactdynError("alpha must be >= 0")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ExactdynError("alpha must be strictly increasing")
    return tuple(values)


def _load_text(path):
    if checked_size(path) == 0:
        raise ExactdynError(f"{path} is empty")
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise ExactdynError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ExactdynError(f"cannot read {path}: {exc.strerror}") from None


def _reject_constant(name):
    raise ExactdynError(f"non-finite number {name} in the file")


def _config(raw, options):
    """Merge the file's configuration with command-line options (which may fill, not contradict)."""
    if not isinstance(raw, dict):
        raise ExactdynError("'metadata' must be an object")
    unknown = set(raw) - CONFIG_KEYS - INFORMATIONAL_KEYS
    if unknown:
        raise ExactdynError(f"unknown metadata key(s) {', '.join(sorted(unknown))}")
    merged = {k: raw[k] for k in CONFIG_KEYS if k in raw and raw[k] is not None}
    for key, value in options.items():
        if value is None:
            continue
        if key in merged and _normal(key, merged[key]) != _normal(key, value):
            raise ExactdynError(f"--{key.replace('_', '-')} {value} contradicts the file's {key} = {merged[key]}")
        merged[key] = value
    return merged


def _normal(key, value):
    try:
        return to_fraction(value) if key == "eta" else value
    except ExactdynError:
        return value


def _initial(raw):
    states = raw if isinstance(raw, list) else [raw]
    if not states:
        raise ExactdynError("'initial' is an empty list")
    parsed = []
    for s, state in enumerate(states):
        try:
            parsed.append(parse_initial(_exact_numbers(state)))
        except ExactdynError as exc:
            raise ExactdynError(f"initial state {s}: {exc}") from None
    first = parsed[0]
    for s, p in enumerate(parsed[1:], 1):
        if (p.K, p.M) != (first.K, first.M) or p.spectrum.eigenvalues != first.spectrum.eigenvalues \
                or p.spectrum.weights != first.spectrum.weights:
            raise ExactdynError(f"initial state {s} has another spectrum or other widths than state 0")
    return tuple(parsed)


def _exact_numbers(value):
    """JSON floats (read as floats for the trajectory) go to the init parser as exact decimals."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExactdynError(f"non-finite number {value!r} in the initial state")
        return Fraction(repr(value))
    if isinstance(value, list):
        return [_exact_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _exact_numbers(v) for k, v in value.items()}
    return value


def _settings(config, initial):
    activation = config.get("activation")
    if activation is None:
        raise ExactdynError("the activation is not given (file metadata or --activation)")
    if activation not in ACTIVATIONS:
        raise ExactdynError(f"unknown activation {activation!r} (one of {', '.join(ACTIVATIONS)})")
    if "eta" not in config:
        raise ExactdynError("the learning rate is not given (file metadata or --eta)")
    eta = to_fraction(config["eta"], "eta") if not isinstance(config["eta"], float) else Fraction(repr(config["eta"]))
    if eta <= 0:
        raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
    weights = config.get("output_weights") or ("mean" if activation == "quadratic" else "one")
    if weights not in ("one", "sqrt", "mean"):
        raise ExactdynError(f"unknown output weights {weights!r} (one, sqrt or mean)")
    N = config.get("N")
    if N is not None and (isinstance(N, bool) or not isinstance(N, int) or N < 2):
        raise ExactdynError(f"N must be a whole number >= 2, got {N!r}")
    seeds = config.get("seeds", len(initial))
    if isinstance(seeds, list):
        seeds = len(seeds)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ExactdynError(f"seeds must be a count >= 1 or a list of seeds, got {seeds!r}")
    for key, have in (("K", initial[0].K), ("M", initial[0].M), ("L", initial[0].spectrum.L)):
        if key in config and config[key] != have:
            raise ExactdynError(f"{key} = {config[key]} in the metadata, but the initial state has {key} = {have}")
    return activation, weights, eta, N, seeds


def _series_from_json(data, A, K, M, L):
    series = {}
    if "eps_g" in data:
        series["eps_g"] = _array(data["eps_g"], (A,), "eps_g")
    for name, cols in (("R1", M), ("Q1", K)):
        if name in data:
            arr = _array(data[name], (A, K, cols), name)
            for i in range(K):
                for j in range(cols):
                    series[f"{name}_{i + 1}_{j + 1}"] = arr[:, i, j]
    if "overlaps" in data:
        ov = data["overlaps"]
        if not isinstance(ov, dict) or not ov or set(ov) - {"r", "q"}:
            raise ExactdynError("'overlaps' must be an object with keys 'r' and/or 'q'")
        for name, cols in (("r", M), ("q", K)):
            if name in ov:
                arr = _array(ov[name], (A, L, K, cols), f"overlaps.{name}")
                for k in range(L):
                    for i in range(K):
                        for j in range(cols):
                            series[f"{name}{k + 1}_{i + 1}_{j + 1}"] = arr[:, k, i, j]
    return series


def read_json(text, options, init=None):
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ExactdynError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ExactdynError("the JSON is nested too deeply") from None
    if not isinstance(data, dict):
        raise ExactdynError("the trajectory file must hold a JSON object")
    unknown = set(data) - JSON_KEYS
    if unknown:
        raise ExactdynError(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "metadata" in data and "config" in data:
        raise ExactdynError("give 'metadata' or 'config', not both")
    if "alpha" not in data:
        raise ExactdynError("missing key 'alpha'")
    if not isinstance(data["alpha"], list):
        raise ExactdynError("'alpha' must be a list of numbers")
    alpha = _alpha([_finite(a, f"alpha[{i}]") for i, a in enumerate(data["alpha"])])
    if ("initial" in data) == (init is not None):
        raise ExactdynError("give the initial state once: the file's 'initial' or --init")
    initial = _initial(data["initial"]) if init is None else (init,)
    config = _config(data.get("metadata", data.get("config", {})), options)
    K, M, L = initial[0].K, initial[0].M, initial[0].spectrum.L
    series = _series_from_json(data, len(alpha), K, M, L)
    stderr = None
    if "eps_g_stderr" in data:
        if "eps_g" not in data:
            raise ExactdynError("'eps_g_stderr' without 'eps_g'")
        stderr = _stderr(data["eps_g_stderr"], len(alpha))
    if "eps_g_seeds" in data:
        if not isinstance(data["eps_g_seeds"], list) or not data["eps_g_seeds"] \
                or not isinstance(data["eps_g_seeds"][0], list):
            raise ExactdynError("'eps_g_seeds' must be a list (per alpha) of lists (per seed)")
        _array(data["eps_g_seeds"], (len(alpha), len(data["eps_g_seeds"][0])), "eps_g_seeds")
    return _assemble(alpha, series, stderr, initial, config)


def _stderr(values, A):
    if not isinstance(values, list) or len(values) != A:
        raise ExactdynError(f"'eps_g_stderr' must be a list of {A} numbers")
    # simulate writes NaN-free JSON; a single seed has no standard error: null
    out = [None if v is None else _finite(v, f"eps_g_stderr[{i}]") for i, v in enumerate(values)]
    if any(v is not None and v < 0 for v in out):
        raise ExactdynError("eps_g_stderr must be >= 0")
    return None if all(v is None for v in out) else tuple(np.nan if v is None else v for v in out)


def read_csv(text, options, init):
    if init is None:
        raise ExactdynError("a CSV trajectory needs its initial state: --init FILE")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ExactdynError("the CSV file has no header line")
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), strict=True))
    except csv.Error as exc:
        raise ExactdynError(f"malformed CSV: {exc}") from None
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise ExactdynError(f"duplicate column(s) {', '.join(dup)}")
    K, M, L = init.K, init.M, init.spectrum.L
    for h in header:
        m = _COLUMN.match(h)
        if not m:
            raise ExactdynError(f"unknown column {h!r} (alpha, eps_g, eps_g_stderr, R1_i_n, Q1_i_j, r{{k}}_i_n, "
                                f"q{{k}}_i_j)")
        if m.group(2):
            i, j, cols = int(m.group(3)), int(m.group(4)), (M if m.group(2) == "R1" else K)
            if not (1 <= i <= K and 1 <= j <= cols):
                raise ExactdynError(f"column {h!r} is outside the {K} x {cols} overlaps of the initial state")
        elif m.group(5):
            k, i, j, cols = int(m.group(6)), int(m.group(7)), int(m.group(8)), (M if m.group(5) == "r" else K)
            if not (1 <= k <= L and 1 <= i <= K and 1 <= j <= cols):
                raise ExactdynError(f"column {h!r} is outside the initial state's L = {L} groups of {K} x {cols}")
    if "alpha" not in header:
        raise ExactdynError("the CSV file has no 'alpha' column")
    if len(rows) < 2:
        raise ExactdynError("the CSV file has a header but no data")
    values = {h: [] for h in header}
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise ExactdynError(f"data line {n} has {len(row)} cells, the header {len(header)}")
        for h, cell in zip(header, row):
            values[h].append(_finite(cell.strip(), f"column {h}, data line {n}"))
    alpha = _alpha(values.pop("alpha"))
    stderr = values.pop("eps_g_stderr", None)
    if stderr is not None:
        if "eps_g" not in values:
            raise ExactdynError("column eps_g_stderr without eps_g")
        if any(v < 0 for v in stderr):
            raise ExactdynError("eps_g_stderr must be >= 0")
        stderr = tuple(stderr)
    series = {h: np.array(v) for h, v in values.items()}
    return _assemble(alpha, series, stderr, (init,), _config({}, options))


def _assemble(alpha, series, stderr, initial, config):
    if not series:
        raise ExactdynError("the trajectory has nothing to check: give eps_g or overlaps")
    activation, weights, eta, N, seeds = _settings(config, initial)
    return TrajectoryFile(alpha, series, stderr, initial, activation, weights, eta, N, seeds)


def read_trajectory(path, options=None, init=None):
    """Parse a trajectory file (JSON or CSV, told apart by the first character); `options` are
    configuration values from the command line, `init` an InitialOverlaps for files without one."""
    text = _load_text(path)
    options = options or {}
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise ExactdynError(f"{path} holds only white space")
    # a CSV file starts with its header or a comment; anything else is read as JSON
    if stripped[0].isalpha() or stripped[0] in "#\"":
        return read_csv(stripped, options, init)
    return read_json(stripped, options, init)


# --- prediction and comparison ------------------------------------------------------------------

def predict(traj):
    """exactdyn's series for every quantity in the file, averaged over the file's initial states,
    and the number of digits the float64 integration vouches for."""
    from ..numeric.committee import from_file, integrate
    from ..symbolic.hierarchy import Structure

    structure = Structure.named(traj.activation, traj.K, traj.M, traj.L, traj.output_weights)
    lam, frac = traj.initial[0].spectrum.floats()
    total, digits, cache = None, 15, {}
    for init in traj.initial:
        key = (init.r, init.q, init.t)
        if key not in cache:
            run = integrate(structure, from_file(init), traj.eta, traj.alpha)
            digits = min(digits, run.verified_digits)
            cache[key] = _series_of(run, traj, lam, frac)
        values = cache[key]
        total = values if total is None else {k: total[k] + v for k, v in values.items()}
    return {k: v / len(traj.initial) for k, v in total.items()}, digits


def _series_of(run, traj, lam, frac):
    """eps_g, every r^k, q^k (both orders of q's indices), t^k, R1, Q1 along a run."""
    K, M, L = traj.K, traj.M, traj.L
    get = lambda name: np.array([ov[name] for ov in run.overlaps])
    out = {"eps_g": np.array(run.eps_g)}
    t = traj.initial[0].t
    for k in range(1, L + 1):
        for i in range(1, K + 1):
            for n in range(1, M + 1):
                out[f"r{k}_{i}_{n}"] = get(f"r{k}_{i}_{n}")
            for j in range(1, K + 1):
                out[f"q{k}_{i}_{j}"] = get(f"q{k}_{min(i, j)}_{max(i, j)}")
        for n in range(1, M + 1):
            for m in range(1, M + 1):
                out[f"t{k}_{n}_{m}"] = np.full(len(run.alpha), float(t[k - 1][n - 1][m - 1]))
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

