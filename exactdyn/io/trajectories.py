"""Trajectory files that `exactdyn check` reads: any code's eps_g and overlaps along alpha.

JSON: {"alpha": [...], "eps_g": [...], "eps_g_stderr": [...], "eps_g_seeds": [[...]],
       "R1": [A][K][M], "Q1": [A][K][K], "overlaps": {"r": [A][L][K][M], "q": [A][L][K][K]},
       "initial": {init-file object} or [one per seed], "metadata" (or "config"): {...}}
plus the keys `solve` writes (digits, rigorous, status, method, working_precision_bits, message).
CSV: columns alpha, eps_g, eps_g_stderr, R1_i_n, Q1_i_j, r{k}_i_n, q{k}_i_j (1-based),
     lines starting with '#' ignored; the configuration and initial state come from options.
"""
from dataclasses import dataclass
from fractions import Fraction
import csv
import io
import math
import re

import numpy as np

from ..errors import ExactdynError
from ..numbers import to_fraction
from ..symbolic.conventions import OUTPUT_WEIGHTS
from ..symbolic.expectations import activation_names
from ..symbolic.hierarchy import Structure
from .curves import INFORMATIONAL_KEYS, SOLVE_KEYS
from .files import finite, increasing_alpha, parse_json, read_text
from .initfile import parse_initial

CONFIG_KEYS = {"activation", "eta", "output_weights", "N", "seeds", "K", "M", "L"}
JSON_KEYS = {"alpha", "eps_g", "eps_g_stderr", "eps_g_seeds", "R1", "Q1", "overlaps", "initial", "metadata",
             "config"} | SOLVE_KEYS
_COLUMN = re.compile(r"^(?:(alpha|eps_g|eps_g_stderr)|(R1|Q1)_(\d+)_(\d+)|([rq])(\d+)_(\d+)_(\d+))$")


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


def _array(value, shape, where):
    """A nested list of finite numbers of exactly this shape, as a float array."""
    def walk(v, dims, path):
        if not dims:
            return finite(v, f"{where}{path}")
        if not isinstance(v, list):
            raise ExactdynError(f"{where}{path} must be a list of {dims[0]}, got {type(v).__name__}")
        if len(v) != dims[0]:
            raise ExactdynError(f"{where}{path} has {len(v)} entries, expected {dims[0]}")
        return [walk(x, dims[1:], f"{path}[{i}]") for i, x in enumerate(v)]
    return np.array(walk(value, list(shape), ""), float).reshape(shape)


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
    if activation not in activation_names():
        raise ExactdynError(f"unknown activation {activation!r} (one of {', '.join(activation_names())})")
    if "eta" not in config:
        raise ExactdynError("the learning rate is not given (file metadata or --eta)")
    eta = to_fraction(config["eta"], "eta") if not isinstance(config["eta"], float) else Fraction(repr(config["eta"]))
    if eta <= 0:
        raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
    weights = config.get("output_weights")
    if weights not in (None, *OUTPUT_WEIGHTS):
        raise ExactdynError(f"unknown output weights {weights!r} (one, sqrt or mean)")
    weights = Structure.named(activation, 1, 1, 1, weights).output_weights  # the name's convention
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
    data = parse_json(text, "the trajectory")
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
    alpha = increasing_alpha([finite(a, f"alpha[{i}]") for i, a in enumerate(data["alpha"])])
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
    out = [None if v is None else finite(v, f"eps_g_stderr[{i}]") for i, v in enumerate(values)]
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
            values[h].append(finite(cell.strip(), f"column {h}, data line {n}"))
    alpha = increasing_alpha(values.pop("alpha"))
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
    text = read_text(path)
    options = options or {}
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise ExactdynError(f"{path} holds only white space")
    # a CSV file starts with its header or a comment; anything else is read as JSON
    if stripped[0].isalpha() or stripped[0] in "#\"":
        return read_csv(stripped, options, init)
    return read_json(stripped, options, init)
