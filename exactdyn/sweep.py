"""Parameter sweeps: solve (or find_plateau) over the cartesian product of a grid, one process per
point on a dask.distributed cluster (local by default), resumable from a JSON-lines progress file.

Files, for ``out="results/sweep"``: ``results/sweep.progress.jsonl`` (a header, then one line per
finished point: the source of truth a restart resumes from), ``.csv`` and ``.parquet`` (one row per
point and alpha; per point for plateaus) and ``.png`` (eps_g(alpha), one curve per point).
"""
from dataclasses import dataclass
from fractions import Fraction
import itertools
import json
import logging
import math
import os
from pathlib import Path
import time

from .errors import ExactdynError
from .numbers import to_fraction

# name -> default; the order is the table's column order and the key's
DEFAULTS = {"activation": "erf", "K": 2, "M": 2, "L": 1, "beta": 1, "eta": Fraction(1, 2),
            "sigma_J": Fraction(1, 10), "seed": 0}
WHOLE = ("K", "M", "L", "seed")
KINDS = ("solve", "plateau")
MAX_POINTS = 100_000
MAX_WORKERS = 256
CONNECT_SECONDS = 5
PLATEAU_DIGITS = 20
MAX_LEGEND = 10
RESULT_COLUMNS = {"solve": ("alpha", "eps_g", "eps_g_float", "digits"),
                  "plateau": ("eps_g", "eps_g_float", "digits", "escape_rate", "escape_rate_float",
                              "escape_rate_digits")}
TAIL_COLUMNS = ("status", "method", "seconds", "error")


@dataclass(frozen=True)
class SweepResult:
    """The table of every finished point (pandas DataFrame), how many points this run computed,
    skipped (finished before) and left (``limit`` reached), and the files written."""

    table: object
    computed: int
    skipped: int
    remaining: int
    files: dict


def _decimal(frac):
    """A Fraction as a short exact string: a decimal when it has one, else 'p/q'."""
    den, twos, fives = frac.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return f"{frac.numerator}/{frac.denominator}"
    places = max(twos, fives)
    scaled = abs(frac.numerator) * 10 ** places // frac.denominator
    text = str(scaled).rjust(places + 1, "0")
    body = f"{text[:-places]}.{text[-places:]}".rstrip("0").rstrip(".") if places else text
    return ("-" if frac < 0 else "") + body


def _canonical(name, value):
    """The canonical (JSON-able) form of one grid value: the same number always keys the same point."""
    from .symbolic.expectations import activation_names

    if name == "activation":
        if not isinstance(value, str) or value not in activation_names():
            raise ExactdynError(f"unknown activation {str(value)[:40]!r}: choose {', '.join(activation_names())}")
        return value
    frac = to_fraction(value, name)
    if name in WHOLE:
        low = 0 if name == "seed" else 1
        if frac.denominator != 1 or not low <= frac <= 10 ** 9:
            raise ExactdynError(f"{name} must be a whole number >= {low}, got {str(value)[:40]!r}")
        return int(frac)
    if (name == "eta" and frac <= 0) or (name == "sigma_J" and frac < 0) or (name == "beta" and frac <= -1):
        raise ExactdynError(f"{name} out of range: {str(value)[:40]!r} (eta > 0, sigma_J >= 0, beta > -1)")
    return _decimal(frac)


def _axes(grid):
    """grid -> {name: canonical values} for every parameter (defaults filled in), size checked."""
    if not isinstance(grid, dict):
        raise ExactdynError("grid must be a dict: parameter name -> list of values")
    unknown = sorted(set(grid) - set(DEFAULTS), key=str)
    if unknown:
        raise ExactdynError(f"unknown sweep parameter(s) {', '.join(map(str, unknown))}: choose {', '.join(DEFAULTS)}")
    axes = {}
    for name, default in DEFAULTS.items():
        values = grid.get(name, [default])
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ExactdynError(f"grid[{name!r}] must be a list of values")
        values = list(values)
        if not values:
            raise ExactdynError(f"grid[{name!r}] is empty: give at least one value")
        if len(values) > MAX_POINTS:
            raise ExactdynError(f"grid[{name!r}] has more than {MAX_POINTS} values")
        axes[name] = list(dict.fromkeys(_canonical(name, v) for v in values))
    size = math.prod(len(v) for v in axes.values())
    if size > MAX_POINTS:
        raise ExactdynError(f"the grid has {size} points, more than the {MAX_POINTS} allowed: sweep it in parts")
    return axes


def _points(axes):
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def _key(point):
    return json.dumps([point[name] for name in DEFAULTS])


# --- one point (runs in a worker process) ---------------------------------------------------

def _problem(point):
    from .problem import Problem
    from .spectrum import power_law

    beta = Fraction(point["beta"])
    prec = None if beta.denominator == 1 else 128 + 16 * point["L"].bit_length()
    return Problem.named(point["activation"], point["K"], point["M"], power_law(point["L"], beta, prec=prec),
                         Fraction(point["eta"]))


def _solve_rows(point, alpha, digits):
    from .problem import InitialState
    from .solve import solve

    problem = _problem(point)
    initial = InitialState.expected(problem, Fraction(point["sigma_J"]), seed=point["seed"])
    sol = solve(problem, initial, alpha, digits=digits)
    return [{"alpha": float(a), "eps_g": s, "eps_g_float": f, "digits": d, "status": sol.status.value,
             "method": sol.method}
            for a, s, f, d in zip(sol.alpha, sol.decimals(), sol.floats(), sol.digits)]


def _show(value, digits):
    """(decimal string with the vouched digits or None, float) of an mpf/mpc nearly real."""
    import mpmath

    real = value.real if isinstance(value, mpmath.mpc) else value
    return (mpmath.nstr(real, digits) if digits > 0 else None), float(real)


def _plateau_rows(point, digits):
    from .numeric.plateau import find_plateau

    pl = find_plateau(_problem(point), digits=digits or PLATEAU_DIGITS)
    (eps, eps_f), (rate, rate_f) = _show(pl.eps_g, pl.eps_g_digits), _show(pl.escape_rate, pl.escape_rate_digits)
    return [{"eps_g": eps, "eps_g_float": eps_f, "digits": pl.eps_g_digits, "escape_rate": rate,
             "escape_rate_float": rate_f, "escape_rate_digits": pl.escape_rate_digits, "status": "ok",
             "method": "find_plateau (Newton, verified by a second run)"}]


def run_point(kind, point, alpha, digits):
    """One finished point as a JSON-able record; a failure is recorded with its message, not raised."""
    started = time.perf_counter()
    try:
        rows, error = (_solve_rows(point, alpha, digits) if kind == "solve" else _plateau_rows(point, digits)), ""
    except Exception as exc:  # a sweep outlives its failing points; the message says what failed
        rows = []
        error = str(exc) if isinstance(exc, ExactdynError) else f"{type(exc).__name__}: {exc}"
    return {"key": _key(point), "point": point, "rows": rows, "error": error,
            "seconds": round(time.perf_counter() - started, 4)}


# --- progress file --------------------------------------------------------------------------

def _header(kind, alpha, digits):
    return {"exactdyn_sweep": 1, "kind": kind, "alpha": [str(a) for a in alpha], "digits": digits}


def _read_progress(path, header):
    """Finished points by key; the header must match this run's (kind, alpha, digits).  A torn last
    line (the run was killed while writing it) is dropped."""
    if not path.exists() or path.stat().st_size == 0:
        return {}
    lines = path.read_text().splitlines()
    try:
        first = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        first = None
    if first != header:
        raise ExactdynError(f"{path} belongs to a different sweep (kind, alpha or digits differ): "
                            "give another --out or delete it")
    done = {}
    for i, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            done[record["key"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            if i != len(lines):
                raise ExactdynError(f"{path}, line {i}: not a sweep record (the file is damaged)") from None
            path.write_text("\n".join(lines[:-1]) + "\n")  # so the next record starts on a line of its own
    return done


def _append(fh, record):
    fh.write(json.dumps(record) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# --- the run ------------------------------------------------------------------------------

def _client(scheduler, workers):
    from distributed import Client, LocalCluster

    if scheduler is None:
        return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR))
    try:
        return Client(str(scheduler), timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ExactdynError(f"cannot reach the dask scheduler at {str(scheduler)[:80]!r} within "
                            f"{CONNECT_SECONDS} s ({type(exc).__name__})") from None


def _check_request(kind, alpha, digits, workers, limit):
    from .solve import MAX_DIGITS, _alpha

    if kind not in KINDS:
        raise ExactdynError(f"unknown sweep kind {kind!r}: choose {', '.join(KINDS)}")
    alphas = _alpha(alpha) if kind == "solve" else []
    for name, value, top in (("digits", digits, MAX_DIGITS), ("workers", workers, MAX_WORKERS),
                             ("limit", limit, MAX_POINTS)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top):
            raise ExactdynError(f"{name} must be a whole number from 1 to {top}, got {value!r}")
    return alphas


def sweep(grid, *, kind="solve", alpha=(0, 1), digits=None, out="sweep", scheduler=None, workers=2,
          progress=True, limit=None):
    """Run `kind` ('solve': eps_g at ``alpha``; 'plateau': find_plateau's height and escape rate) on
    every point of ``grid`` (parameter name -> list of values; names in DEFAULTS, the rest take
    their defaults), each in a worker process of a dask cluster: a LocalCluster of ``workers``
    processes, or the scheduler at address ``scheduler``.  Points already in the progress file
    ``out + '.progress.jsonl'`` are skipped; ``limit`` stops after that many new points.  Writes
    ``out`` + '.csv', '.parquet' and (solve) '.png'; returns a SweepResult."""
    from tqdm import tqdm

    alphas = _check_request(kind, alpha, digits, workers, limit)
    points = _points(_axes(grid))
    stem = Path(out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    log = stem.with_name(stem.name + ".progress.jsonl")
    header = _header(kind, alphas, digits)
    done = _read_progress(log, header)
    pending = [p for p in points if _key(p) not in done]
    todo = pending[:limit] if limit is not None else pending
    if todo:
        with _client(scheduler, workers) as client, open(log, "a") as fh, \
                tqdm(total=len(points), initial=len(points) - len(pending), disable=not progress,
                     unit="point", desc="sweep") as bar:
            if fh.tell() == 0:
                _append(fh, header)
            _prepare(kind, todo)
            _run(client, kind, todo, alphas, digits, done, fh, bar)
    files = _write_outputs(stem, kind, points, done, alphas, _varying(grid))
    return SweepResult(files.pop("table"), len(todo), len(points) - len(pending), len(pending) - len(todo), files)


def _prepare(kind, points):
    """Derive each structure once here, so that the workers read it from the disk cache instead of
    all deriving it at once (the linear K = M = 1 solver needs none)."""
    from .symbolic.cache import derive

    seen = set()
    for p in points:
        shape = (p["activation"], p["K"], p["M"], p["L"])
        if shape in seen or (kind == "solve" and p["activation"] == "linear" and p["K"] == p["M"] == 1):
            continue
        seen.add(shape)
        try:
            derive(_problem(p).structure, "mode")
        except ExactdynError:
            pass  # the worker records the same error for the point


def _run(client, kind, todo, alphas, digits, done, fh, bar):
    from distributed import as_completed

    futures = client.map(run_point, [kind] * len(todo), todo, [alphas] * len(todo), [digits] * len(todo),
                         pure=False)
    point_of = dict(zip(futures, todo))
    for future in as_completed(futures):
        try:
            record = future.result()
        except Exception as exc:  # the worker died (KilledWorker, out of memory): that point failed
            point = point_of[future]
            record = {"key": _key(point), "point": point, "rows": [], "seconds": 0.0,
                      "error": f"the worker running this point died ({type(exc).__name__}: {str(exc)[:200]})"}
        done[record["key"]] = record
        _append(fh, record)
        bar.update()


# --- outputs --------------------------------------------------------------------------------

def _varying(grid):
    return [name for name in DEFAULTS if len(set(map(str, grid.get(name, [None])))) > 1]


def _failed_rows(kind, record, alphas):
    blank = {"eps_g": None, "eps_g_float": math.nan, "digits": 0, "status": "failed", "method": ""}
    if kind == "plateau":
        return [{**blank, "escape_rate": None, "escape_rate_float": math.nan, "escape_rate_digits": 0}]
    return [{**blank, "alpha": float(Fraction(a))} for a in alphas]


def _table(kind, points, done, alphas):
    import pandas as pd

    columns = list(DEFAULTS) + list(RESULT_COLUMNS[kind]) + list(TAIL_COLUMNS)
    rows = []
    for p in points:
        record = done.get(_key(p))
        if record is None:
            continue
        extra = {"seconds": record["seconds"], "error": record["error"]}
        for row in record["rows"] or _failed_rows(kind, record, alphas):
            rows.append({**p, **row, **extra})
    return pd.DataFrame(rows, columns=columns)


def _plot(table, path, varying):
    from .io.plotting import plot_curves

    curves = []
    for values, part in table[table["error"] == ""].groupby(list(DEFAULTS), sort=False):
        label = ", ".join(f"{n}={v}" for n, v in zip(DEFAULTS, values) if n in varying)
        # matplotlib leaves '_'-labels out: past MAX_LEGEND entries a legend hides the curves
        label = label if len(curves) < MAX_LEGEND else "_" + label
        curves.append((label, part["alpha"].tolist(), part["eps_g_float"].tolist()))
    fixed = ", ".join(f"{n}={table[n].iloc[0]}" for n in DEFAULTS if n not in varying) if len(table) else ""
    shown = "" if len(curves) <= MAX_LEGEND else f" (legend: the first {MAX_LEGEND})"
    plot_curves(curves, path, title=f"sweep: {len(curves)} curves{shown}\n{fixed}")


def _write_outputs(stem, kind, points, done, alphas, varying):
    """CSV, Parquet and (solve) PNG of every finished point, rebuilt from the progress records."""
    table = _table(kind, points, done, alphas)
    files = {"table": table, "csv": stem.with_name(stem.name + ".csv"),
             "parquet": stem.with_name(stem.name + ".parquet")}
    table.to_csv(files["csv"], index=False)
    table.to_parquet(files["parquet"], index=False)
    if kind == "solve":
        files["png"] = stem.with_name(stem.name + ".png")
        _plot(table, files["png"], varying)
    return files
