"""The compiled engine (exactdyn/numeric/engine.py behind exactdyn/solve.py) against the pre-engine
paths (bench/baseline.py: lambdify + DOP853 in float64, mpmath Bulirsch-Stoer at high precision),
old and new in the same run.  Measures and reports; asserts nothing.

Model of every case: erf committee machine K = M = 2, power-law spectrum beta = 1 with L distinct
eigenvalues, eta = 0.5, sigma_J = 0.5, InitialState.expected (seed 0).

    python bench/bench_engine.py            # full run (~30-60 min on 2 busy cores); writes bench/results_engine.md
    python bench/bench_engine.py --quick    # small cases only (< 2 min); prints, writes nothing

Times are wall-clock seconds (min over repeats where a case is cheap enough to repeat) with the
process CPU time next to it where it matters: other work on the machine inflates wall time, not
CPU time.  Expensive cases run under a time budget (SIGALRM; every integrator here calls back into
Python, so a budget interrupts it) and are reported as "> budget" instead of being waited for.

Columns: derivation cold (EXACTDYN_CACHE pointed at a fresh temporary directory) and warm (read
back from that cache), conversion (sympy -> heyoka expressions, engine.compile_system), compile
(LLVM: the float64 cfuncs, or one MPFR Taylor integrator), integration (both runs of the verified
pair), end-to-end (what one call costs a user with a warm derivation cache), verified digits (min
over alpha of Solution.digits; the old path's own two-run count), and old/new ratios.
"""
import argparse
from contextlib import contextmanager
import datetime
from fractions import Fraction
import math
import os
from pathlib import Path
import platform
import signal
import subprocess
import sys
import tempfile
import time

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
_CACHE = tempfile.TemporaryDirectory(prefix="exactdyn-bench-cache-")
os.environ["EXACTDYN_CACHE"] = _CACHE.name  # cold derivations: nothing cached from earlier runs

import heyoka as hy  # noqa: E402

# heyoka keeps compiled code in memory and on disk (~/.cache/heyoka): a fresh disk cache makes the
# first compile of each system cold; later compiles of the same expressions are cache hits, as
# they are for a user's second call.
hy.llvm_state.set_diskcache_path(os.path.join(_CACHE.name, "heyoka"))
hy.llvm_state.clear_memcache()
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import baseline  # noqa: E402
from exactdyn import power_law  # noqa: E402
from exactdyn.numbers import bits_for_digits  # noqa: E402
from exactdyn.numeric import engine  # noqa: E402
from exactdyn.numeric.certify import agreed_digits  # noqa: E402
from exactdyn.numeric.overlaps import assign  # noqa: E402
from exactdyn.problem import InitialState, Problem, exact  # noqa: E402
from exactdyn.solve import solve  # noqa: E402
from exactdyn.symbolic.cache import derive  # noqa: E402

solve_module = sys.modules["exactdyn.solve"]  # the module (the package re-exports the function under its name)

ETA, SIGMA_J, BETA = "0.5", "0.5", 1
FLOAT_RTOL = getattr(solve_module, "FLOAT_RTOL", 1e-12)
FLOAT_DIGITS = getattr(solve_module, "FLOAT_DIGITS", 15)
EULER_DT = Fraction(1, 100)


# --- clocks and budgets ------------------------------------------------------------------------

class OverBudget(BaseException):
    """Raised by the SIGALRM handler (a BaseException: library code catching Exception lets it pass)."""


@contextmanager
def budget(seconds):
    if not seconds:
        yield
        return

    def fire(signum, frame):
        raise OverBudget(seconds)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class T:
    """A timing: wall and CPU seconds (None = not measured; inf = over budget)."""

    def __init__(self, wall=None, cpu=None):
        self.wall, self.cpu = wall, cpu

    @staticmethod
    def start():
        return time.perf_counter(), time.process_time()

    @classmethod
    def since(cls, started):
        return cls(time.perf_counter() - started[0], time.process_time() - started[1])

    def __add__(self, other):
        if self.wall is None or other.wall is None:
            return T()
        return T(self.wall + other.wall, self.cpu + other.cpu)

    def __sub__(self, other):
        if self.wall is None or other.wall is None:
            return T()
        return T(self.wall - other.wall, self.cpu - other.cpu)

    @staticmethod
    def best(timings):
        return T(min(t.wall for t in timings), min(t.cpu for t in timings))

    def fmt(self, cpu=False):
        if self.wall is None:
            return "-"
        if math.isinf(self.wall):
            return f"> {self.cpu:.0f} (budget)"
        text = _secs(self.wall)
        return f"{text} (cpu {_secs(self.cpu)})" if cpu else text


def _secs(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def over(seconds):
    return T(math.inf, seconds)


def timed(fn, *args, repeats=1, limit=None, **kwargs):
    """(result of the last run, best timing) of fn(*args, **kwargs); (None, over(limit)) when a run
    exceeds `limit` seconds."""
    timings, result = [], None
    for _ in range(repeats):
        started = T.start()
        try:
            with budget(limit):
                result = fn(*args, **kwargs)
        except OverBudget:
            if not limit:
                raise  # an enclosing budget's
            return None, over(limit)
        timings.append(T.since(started))
    return result, T.best(timings)


def log(*parts):
    print(*parts, flush=True, file=sys.stderr)


# --- the model -----------------------------------------------------------------------------------

def problem(L):
    return Problem("erf", 2, 2, power_law(L, BETA), ETA)


def spectrum_numbers(p):
    lam = [float(exact(x)) for x in p.spectrum.eigenvalues]
    return float(p.eta) * lam[0], lam[0] / lam[-1]


def mode_values(system, p, initial):
    """(states, params) of the mode system, exact: the per-group entries of overlap_table only.

    solve() builds the full exact overlap table, moments R^(l) = sum_k lambda_k^l r^k up to l = L+1
    included, which the mode basis never reads; in Fractions that costs ~ L^5 (0.3 s at L = 32,
    5 s at 64, 200 s at 128 on this machine).  The engine timings use this table instead, so
    that they measure the engine; the cost of solve()'s own table is measured separately."""
    lam = [exact(x) for x in p.spectrum.eigenvalues]
    frac = [exact(w) for w in p.spectrum.weights]
    table = {"eta": p.eta}
    for k in range(p.L):
        table[f"lam{k + 1}"], table[f"frac{k + 1}"] = lam[k], frac[k]
        for kind, blocks in (("r", initial.r), ("q", initial.q), ("t", initial.t)):
            for a, row in enumerate(blocks[k]):
                for b, value in enumerate(row):
                    table[f"{kind}{k + 1}_{a + 1}_{b + 1}"] = value
    return assign(system, table)


def float_initial(p, initial):
    """The old float path's `initial` tuple: the same exact state, rounded once to float64."""
    lam = [float(exact(x)) for x in p.spectrum.eigenvalues]
    frac = [float(exact(w)) for w in p.spectrum.weights]
    fl = lambda blocks: [[[float(x) for x in row] for row in mat] for mat in blocks]
    return lam, frac, fl(initial.r), fl(initial.q), fl(initial.t), p.L


def exact_initial(p, initial):
    lam = [exact(x) for x in p.spectrum.eigenvalues]
    frac = [exact(w) for w in p.spectrum.weights]
    return lam, frac, initial.r, initial.q, initial.t, p.L


def grid(end):
    """0 and the 1-2-5 sequence up to `end` (Fractions, so that solve() reads them exactly)."""
    end = Fraction(end)
    out, decade = [Fraction(0)], Fraction(1, 10)
    while decade <= end:
        out += [m * decade for m in (1, 2, 5) if m * decade <= end]
        decade *= 10
    return out if out[-1] == end else out + [end]


# --- one L: derivation, conversion, compile ------------------------------------------------------

class Prepared:
    """Derived, converted and compiled system of one L, with the stage timings.  ``progress`` (a
    dict) receives each stage's timing as it ends and the name of the stage under way, so that a
    budget that fires inside the constructor still tells how far it got."""

    def __init__(self, L, progress=None):
        progress = {} if progress is None else progress
        self.L, self.p = L, problem(L)
        self.initial = InitialState.expected(self.p, SIGMA_J)
        self.eta_lam1, self.lam_ratio = spectrum_numbers(self.p)

        def stage(name, fn, *args):
            progress["stopped in"] = name
            result, progress[name] = timed(fn, *args)
            return result

        self.system = stage("derive cold", derive, self.p.structure, "mode")
        self.system = stage("derive warm", derive, self.p.structure, "mode")
        self.n = len(self.system.states)
        progress["states"] = self.n
        self.compiled = stage("convert", engine.compile_system, self.system)
        self.rhs, self.eps = stage("compile", lambda: (_cfunc(self.compiled, "rhs"), _cfunc(self.compiled, "eps")))
        self.y0, self.params = stage("values", mode_values, self.system, self.p, self.initial)
        del progress["stopped in"]
        self.t_cold, self.t_warm, self.t_convert, self.t_compile, self.t_values = (
            progress[k] for k in ("derive cold", "derive warm", "convert", "compile", "values"))
        hy.llvm_state.clear_memcache()  # the same compile again: a hit in heyoka's disk cache
        self.t_compile_cached = timed(lambda: [hy.cfunc(out, list(self.compiled.variables), compact_mode=True)
                                               for out in (list(self.compiled.rhs), [self.compiled.eps_g])])[1]
        self.pars = np.array(self.compiled.parameter_values(self.params, engine.float_number), dtype=float)
        self.y = np.array([engine.float_number(v) for v in self.y0], dtype=float)

    @property
    def t_setup_cold(self):
        return self.t_cold + self.t_convert + self.t_compile

    def eps_of(self, states):
        states = np.atleast_2d(np.asarray(states, dtype=float))
        pars = np.repeat(self.pars[:self.eps.nparams, None], len(states), axis=1)
        return self.eps(np.ascontiguousarray(states.T), pars=pars)[0]

    def rhs_call_seconds(self, calls=2000):
        """CPU seconds of one compiled rhs evaluation (from Python, as the integrators call it)."""
        out, pars = np.empty(self.n), self.pars[:self.rhs.nparams]
        best = math.inf
        for _ in range(3):
            started = time.process_time()
            for _ in range(calls):
                self.rhs(self.y, pars=pars, outputs=out)
            best = min(best, (time.process_time() - started) / calls)
        return best


def _cfunc(compiled, which):
    """The engine's own float64 cfunc (its private cache when present, else the same call)."""
    getter = getattr(engine, "_float_cfunc", None)
    if getter is not None:
        return getter(compiled, which)
    outputs = list(compiled.rhs) if which == "rhs" else [compiled.eps_g]
    return hy.cfunc(outputs, list(compiled.variables), compact_mode=True)


def solve_values_seconds(prep, limit):
    """Seconds of solve()'s exact overlap table (exactdyn.solve._values) for this L, or over budget."""
    values = getattr(solve_module, "_values", None)
    if values is None:
        return T()
    return timed(values, prep.system, prep.p, prep.initial, limit=limit)[1]


# --- float64 paths -------------------------------------------------------------------------------

def new_float_engine(prep, alphas):
    """What solve() does in float64, called on the engine directly (with the bench's mode table):
    LSODA at 10 * FLOAT_RTOL, then at FLOAT_RTOL; digits where both agree."""
    loose = engine.integrate_float(prep.compiled, prep.y0, prep.params, alphas, rtol=FLOAT_RTOL * 10)
    tight = engine.integrate_float(prep.compiled, prep.y0, prep.params, alphas, rtol=FLOAT_RTOL)
    digits = [agreed_digits(v, c, FLOAT_DIGITS) for v, c in zip(loose.eps_g, tight.eps_g)]
    return {"eps": [float(v) for v in tight.eps_g], "digits": digits, "nfev": tight.steps,
            "integration": loose.seconds + tight.seconds}


def new_float_solve(prep, alphas):
    sol = solve(prep.p, prep.initial, alphas)
    return {"eps": sol.floats(), "digits": list(sol.digits), "nfev": sol.stats.get("rhs_evaluations"),
            "integration": sol.stats.get("seconds")}


def old_float(prep, alphas):
    tr = baseline.integrate(prep.p.structure, float_initial(prep.p, prep.initial), float(prep.p.eta), alphas)
    return {"eps": list(tr.eps_g), "digits": [tr.verified_digits], "nfev": tr.nfev,
            "integration": tr.integrate_seconds, "compile": tr.compile_seconds}


def lsoda_profile(prep, alphas, limit):
    """The engine's tight LSODA run (same call as engine.integrate_float at FLOAT_RTOL) with its
    work counted: rhs evaluations and their time, Jacobians, LU factorisations, alpha reached.
    Runs under its own `limit` and returns what it counted when the budget fires."""
    pars = prep.pars[:prep.rhs.nparams]
    info = {"reached": 0.0, "nfev": 0, "rhs_seconds": 0.0, "njev": "-", "nlu": "-", "finished": False, "limit": limit}

    def fun(t, y):
        started = time.perf_counter()
        out = prep.rhs(np.ascontiguousarray(y), pars=pars)
        info["rhs_seconds"] += time.perf_counter() - started
        info["nfev"] += 1
        info["reached"] = max(info["reached"], t)
        return out

    started = T.start()
    try:
        with budget(limit), np.errstate(all="ignore"):
            sol = solve_ivp(fun, (0.0, float(alphas[-1])), prep.y, method="LSODA", t_eval=[float(a) for a in alphas],
                            rtol=FLOAT_RTOL, atol=FLOAT_RTOL * 1e-6)
        info.update(njev=sol.njev, nlu=sol.nlu, finished=sol.status == 0)
    except OverBudget:
        pass
    info["time"] = T.since(started)
    return info


def alt_dop853(prep, alphas):
    """Evidence for the engine: scipy DOP853 (explicit, as the old path) on the engine's compiled
    rhs, verified as solve() verifies (10 * FLOAT_RTOL against FLOAT_RTOL)."""
    pars = prep.pars[:prep.rhs.nparams]
    fun = lambda _, y: prep.rhs(np.ascontiguousarray(y), pars=pars)
    ts = [float(a) for a in alphas]
    runs = []
    for rtol in (FLOAT_RTOL * 10, FLOAT_RTOL):
        sol = solve_ivp(fun, (0.0, ts[-1]), prep.y, method="DOP853", t_eval=ts, rtol=rtol, atol=rtol * 1e-6)
        if sol.status != 0:
            raise RuntimeError(sol.message)
        runs.append((prep.eps_of(sol.y.T), sol.nfev))
    digits = [agreed_digits(v, c, FLOAT_DIGITS) for v, c in zip(runs[0][0], runs[1][0])]
    return {"eps": runs[1][0].tolist(), "digits": digits, "nfev": runs[1][1]}


def alt_taylor64(prep, alphas, tol=None):
    """Evidence for the engine: heyoka's Taylor integrator in float64 on the same expressions
    (one run at tol = FLOAT_RTOL; its digits are counted against the engine's tight run)."""
    pars = prep.pars[:prep.rhs.nparams]
    started = T.start()
    ta = hy.taylor_adaptive(list(zip(prep.compiled.variables, prep.compiled.rhs)), prep.y, pars=pars,
                            compact_mode=True, tol=tol or FLOAT_RTOL)
    compile_t = T.since(started)
    started = T.start()
    states, steps = [], 0
    for a in alphas:
        outcome = ta.propagate_until(float(a), callback=lambda _: True)  # a Python callback: budgets can fire
        steps += outcome[3]
        states.append(ta.state.copy())
    return {"eps": prep.eps_of(states).tolist(), "steps": steps, "compile": compile_t,
            "integration": T.since(started)}


def euler(prep, alphas, dt=EULER_DT):
    """Fixed-step explicit Euler at dt on the engine's compiled float64 rhs; eps_g at each alpha
    (every alpha must be a multiple of dt)."""
    pars = prep.pars[:prep.rhs.nparams]
    y, out = prep.y.copy(), np.empty(prep.n)
    h = float(dt)
    states, step = [], 0
    for a in alphas:
        target = Fraction(a) / dt
        if target.denominator != 1:
            raise ValueError(f"alpha = {a} is not a multiple of dt = {dt}")
        for _ in range(int(target) - step):
            prep.rhs(y, pars=pars, outputs=out)
            y += h * out
        step = int(target)
        states.append(y.copy())
    return {"eps": prep.eps_of(states).tolist(), "steps": step}


def rel_errors(values, reference):
    out = []
    for v, r in zip(values, reference):
        r = float(r)
        out.append(abs(float(v) - r) / abs(r) if math.isfinite(v) else math.inf)
    return out


# --- high precision ------------------------------------------------------------------------------

def new_taylor(prep, alphas, digits):
    sol = solve(prep.p, prep.initial, alphas, digits=digits, max_seconds=1e9)
    return {"eps": list(sol.eps_g), "digits": list(sol.digits), "steps": sol.stats.get("steps"),
            "integration": sol.stats.get("seconds"), "status": sol.status.value}


def taylor_compile_seconds(prep, digits):
    """The two MPFR Taylor integrators solve() builds (at `bits` and `bits` + 64), built here first:
    their compile is cold (fresh heyoka cache) here and a cache hit inside solve()."""
    used = max((int(str(q)[1:]) for q in hy.get_params(list(prep.compiled.rhs))), default=-1) + 1
    started = T.start()
    for bits, tol in ((bits_for_digits(digits) + 32, digits + 4), (bits_for_digits(digits) + 96, digits + 10)):
        real = engine.real_number(bits)
        pars = prep.compiled.parameter_values(prep.params, real)
        hy.taylor_adaptive(list(zip(prep.compiled.variables, prep.compiled.rhs)), [real(v) for v in prep.y0],
                           pars=pars[:used], fp_type=hy.real, prec=bits, compact_mode=True,
                           tol=real(Fraction(1, 10 ** tol)))
    return T.since(started)


def taylor_estimate(prep, alphas, digits):
    """solve()'s own a-priori cost estimate (what _refuse_costly compares with max_seconds)."""
    cost = getattr(solve_module, "_TAYLOR_COST", None)
    if cost is None:
        return None
    work = prep.eta_lam1 * float(alphas[-1]) + 10
    return 2.5 * cost * prep.n * work * (digits / 10) ** 2


def old_mp(prep, alphas, digits):
    tr = baseline.integrate_mp(prep.p.structure, exact_initial(prep.p, prep.initial), prep.p.eta, alphas,
                               digits=digits)
    return {"eps": list(tr.eps_g), "digits": [tr.digits], "steps": tr.steps}


# --- the benchmark -------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.sections = []

    def table(self, title, header, rows, notes=()):
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
        self.sections.append("\n".join(lines))
        print("\n" + self.sections[-1], flush=True)

    def text(self, text):
        self.sections.append(text)
        print("\n" + text, flush=True)


def dmin(result):
    if result is None:
        return "-"
    return str(min(result["digits"]))


def ratio(old, new):
    if old.wall is None or new.wall is None or math.isinf(new.wall):
        return "-"
    if math.isinf(old.wall):
        return f"> {old.cpu / new.wall:.3g}"
    return f"{old.wall / new.wall:.3g} (cpu {old.cpu / new.cpu:.3g})"


def run(quick):
    report = Report()
    began = time.perf_counter()
    if quick:
        float_cases = [(4, 1000, 3, 1, 60), (16, 1000, 2, 1, 90)]
        taylor_pair = (4, Fraction(1, 4))
        taylor_long = []
        long_case, huge = None, None
        budgets = {"new": 120, "alt": 60, "values": 20, "taylor": 60, "profile": 30}
    else:
        # (L, alpha_end, repeats new, repeats old (0: not run), old budget)
        float_cases = [(4, 1000, 3, 3, 300), (16, 1000, 3, 2, 600), (64, 1000, 1, 1, 900), (256, 1000, 1, 0, 0)]
        taylor_pair = (4, 2)
        taylor_long = [(4, 1000, 900), (16, 1000, 900)]
        long_case = (256, 10_000, 1200)
        huge = (1024, 1000, 300)
        budgets = {"new": 900, "alt": 300, "alt_long": 120, "values": 30, "taylor": 600, "profile": 180}

    preps, floats, refs = {}, {}, {}
    # --- float64, alpha = 1000 ---------------------------------------------------------------------
    for L, end, rep_new, rep_old, old_limit in float_cases:
        log(f"[{time.perf_counter() - began:.0f} s] L = {L}: derivation and compile")
        prep = preps[L] = Prepared(L)
        alphas = grid(end)
        t_values = solve_values_seconds(prep, budgets["values"])
        rec = floats[L] = {"prep": prep, "alphas": alphas, "t_values": t_values}
        # the new path: solve() itself where its exact table is affordable, else the engine directly
        via_solve = t_values.wall is not None and not math.isinf(t_values.wall)
        log(f"[{time.perf_counter() - began:.0f} s] L = {L}: new float64 ({'solve()' if via_solve else 'engine'})")
        fn = new_float_solve if via_solve else new_float_engine
        rec["new"], rec["t_new"] = timed(fn, prep, alphas, repeats=rep_new, limit=budgets["new"])
        rec["via_solve"] = via_solve
        if rec["new"] is not None:
            rec["t_new_int"] = T(rec["new"]["integration"], math.nan)
        if rep_old:
            log(f"[{time.perf_counter() - began:.0f} s] L = {L}: old float64 (lambdify + DOP853)")
            rec["old"], rec["t_old"] = timed(old_float, prep, alphas, repeats=rep_old, limit=old_limit)
        log(f"[{time.perf_counter() - began:.0f} s] L = {L}: DOP853 and float64 Taylor on the compiled rhs")
        rec["dop"], rec["t_dop"] = timed(alt_dop853, prep, alphas, limit=budgets["alt"])
        rec["tay"], rec["t_tay"] = (None, T()) if quick and L > 4 else \
            timed(alt_taylor64, prep, alphas, limit=budgets["alt"])
        rec["rhs_us"] = prep.rhs_call_seconds() * 1e6
        if rec["new"] is not None:
            refs[("float", L, end)] = rec["new"]

    # --- 30 digits ----------------------------------------------------------------------------------
    taylor = []
    L, end = taylor_pair
    prep = preps.get(L) or Prepared(L)
    alphas = grid(end)
    log(f"[{time.perf_counter() - began:.0f} s] 30 digits, L = {L}, alpha = {end}: new and old")
    compile_t = taylor_compile_seconds(prep, 30)
    new, t_new = timed(new_taylor, prep, alphas, 30, repeats=2, limit=budgets["taylor"])
    old, t_old = timed(old_mp, prep, alphas, 30, limit=budgets["taylor"])
    taylor.append((prep, end, new, t_new, old, t_old, compile_t))
    for L, end, limit in taylor_long:
        prep = preps.get(L) or Prepared(L)
        alphas = grid(end)
        log(f"[{time.perf_counter() - began:.0f} s] 30 digits, L = {L}, alpha = {end}: new")
        compile_t = taylor_compile_seconds(prep, 30)
        new, t_new = timed(new_taylor, prep, alphas, 30, limit=limit)
        taylor.append((prep, end, new, t_new, None, T(), compile_t))
        if new is not None:
            refs[("30", L, end)] = new

    # --- L = 256 to alpha = 10^4 ------------------------------------------------------------------
    long = None
    if long_case:
        L, end, limit = long_case
        prep = preps.get(L) or Prepared(L)
        alphas = grid(end)
        log(f"[{time.perf_counter() - began:.0f} s] L = {L} to alpha = {end}: new (engine), then alternatives")
        new, t_new = timed(new_float_engine, prep, alphas, limit=limit)
        log(f"[{time.perf_counter() - began:.0f} s] L = {L} to alpha = {end}: LSODA counted")
        profile = lsoda_profile(prep, alphas, budgets["profile"])
        log(f"[{time.perf_counter() - began:.0f} s] L = {L} to alpha = {end}: DOP853 and float64 Taylor")
        dop, t_dop = timed(alt_dop853, prep, alphas, limit=budgets["alt_long"])
        tay, t_tay = timed(alt_taylor64, prep, alphas, limit=budgets["alt_long"])
        long = (prep, end, new, t_new, dop, t_dop, tay, t_tay, profile)

    # --- Euler at dt = 0.01 -------------------------------------------------------------------------
    euler_rows = []
    for L in sorted(floats):
        rec = floats[L]
        end = rec["alphas"][-1]
        ref_key = ("30", L, end) if ("30", L, end) in refs else ("float", L, end)
        if ref_key not in refs:
            continue
        ref = refs[ref_key]
        log(f"[{time.perf_counter() - began:.0f} s] Euler dt = {EULER_DT}, L = {L}")
        res, t_eu = timed(euler, rec["prep"], rec["alphas"], limit=budgets["alt"])
        rec["euler"] = res
        euler_rows.append((L, end, ref_key[0], ref, rec, res, t_eu))

    # --- L = 1024 -----------------------------------------------------------------------------------
    huge_row = None
    if huge:
        L, end, limit = huge
        log(f"[{time.perf_counter() - began:.0f} s] L = {L} to alpha = {end} within {limit} s")
        huge_row = run_huge(L, end, limit)

    # --- tables -------------------------------------------------------------------------------------
    report_float(report, floats, budgets)
    report_stiffness(report, floats, taylor, long)
    report_taylor(report, taylor)
    if long:
        report_long(report, long)
    report_euler(report, euler_rows)
    report_accuracy(report, floats, refs)
    if huge_row:
        report_huge(report, huge_row)
    report_targets(report, floats, taylor, long, quick)
    return report, time.perf_counter() - began


def run_huge(L, end, limit):
    """Derivation, conversion, compile and the engine's verified LSODA pair at L within `limit` s."""
    stages, started = {}, T.start()
    try:
        with budget(limit):
            prep = Prepared(L, stages)
            stages["stopped in"] = "integration (engine LSODA pair)"
            new, stages["integration"] = timed(new_float_engine, prep, grid(end))
            del stages["stopped in"]
            stages["digits"] = min(new["digits"])
            stages["nfev"] = new["nfev"]
    except OverBudget:
        pass
    stages["total"] = T.since(started)
    return L, end, limit, stages


def report_float(report, floats, budgets):
    rows = []
    for L, rec in sorted(floats.items()):
        prep, new, old = rec["prep"], rec.get("new"), rec.get("old")
        t_new, t_old = rec["t_new"], rec.get("t_old", T())
        new_int = T(new["integration"], math.nan) if new else T()
        old_int = T(old["integration"], math.nan) if old else T()
        rows.append([L, prep.n, f"{float(rec['alphas'][-1]):g}", prep.t_cold.fmt(), prep.t_warm.fmt(),
                     prep.t_convert.fmt(), f"{prep.t_compile.fmt()} ({prep.t_compile_cached.fmt()})",
                     rec["t_values"].fmt(),
                     ("solve() " if rec["via_solve"] else "engine† ") + t_new.fmt(True),
                     new_int.fmt(), dmin(new),
                     t_old.fmt(True) if "t_old" in rec else "not run (L > 64)",
                     old_int.fmt(), dmin(old),
                     ratio(t_old, t_new) if "t_old" in rec else "-",
                     f"{old['integration'] / new['integration']:.3g}" if old and new else "-"])
    report.table(
        "float64, erf K = M = 2, beta = 1, eta = 0.5, sigma_J = 0.5, expected initial state",
        ["L", "states", "alpha", "derive cold", "derive warm", "convert", "compile cold (cached)",
         "solve()'s exact table", "new end-to-end (warm)", "new integration", "new digits",
         "old end-to-end (warm)", "old integration", "old digits", "old/new end-to-end", "old/new integration"],
        rows,
        ["new = solve(problem, initial, alpha) (float64: LSODA on the heyoka cfunc at rtol "
         f"{FLOAT_RTOL * 10:g}, checked at {FLOAT_RTOL:g}); its end-to-end time holds a warm derivation, "
         "solve()'s exact overlap table, conversion, compile and both runs.",
         "engine† = solve()'s float64 steps called on the engine directly (engine.compile_system, "
         "engine.integrate_float twice, certify.agreed_digits), with the bench's per-group table: used where "
         f"solve()'s exact table does not finish within {budgets['values']} s.",
         "old = bench/baseline.py integrate (lambdify + DOP853 at rtol 1e-9, checked at 1e-11), end-to-end with "
         "a warm derivation; run only for L <= 64 (L = 64 takes minutes, L = 256 is out of reach).",
         "digits: min over alpha of the per-point verified digits (new); the old path's single two-run count.",
         "compile = the engine's two float64 cfuncs (rhs, eps_g), cold (fresh heyoka cache); in brackets the "
         "same compile again, a hit in heyoka's disk cache (what solve() pays in the end-to-end column).",
         "times in s, wall-clock, min over repeats (full run: new 3x at L <= 16, old 3x at L = 4 and 2x at "
         "L = 16, else once); cpu = process CPU time; integration = the integrator's own clock (both runs)."])


def report_stiffness(report, floats, taylor, long):
    rows = []
    mp_steps = {prep.L: (new["steps"] if new else None) for prep, end, new, *_ in taylor if end == 1000}
    for L, rec in sorted(floats.items()):
        prep, new, dop, tay = rec["prep"], rec.get("new"), rec.get("dop"), rec.get("tay")
        lsoda_share = "-"
        if new and new.get("nfev") and new.get("integration"):
            # the tight run's rhs calls against both runs' time: about half of the time is the tight run
            lsoda_share = f"{100 * 2 * new['nfev'] * rec['rhs_us'] * 1e-6 / new['integration']:.0f} %"
        rows.append([L, prep.n, f"{prep.eta_lam1:.4g}", f"{prep.lam_ratio:.4g}", f"{rec['rhs_us']:.1f}",
                     new["nfev"] if new else "-", lsoda_share,
                     f"{dop['nfev']} in {rec['t_dop'].fmt()} s, {dmin(dop)} digits" if dop else rec["t_dop"].fmt(),
                     (f"{tay['steps']} in {tay['integration'].fmt()} s (+{tay['compile'].fmt()} s compile), "
                      f"{_agree(tay, new)} digits vs new") if tay else rec["t_tay"].fmt(),
                     mp_steps.get(L, "-") if mp_steps.get(L) is not None else "-"])
    if long:
        prep, end, new, t_new, dop, t_dop, tay, t_tay, _ = long
        rows.append([f"{prep.L} (alpha {end:g})", prep.n, f"{prep.eta_lam1:.4g}", f"{prep.lam_ratio:.4g}", "",
                     new["nfev"] if new else t_new.fmt(), "",
                     f"{dop['nfev']} in {t_dop.fmt()} s, {dmin(dop)} digits" if dop else t_dop.fmt(),
                     (f"{tay['steps']} in {tay['integration'].fmt()} s, {_agree(tay, new)} digits vs new")
                     if tay else t_tay.fmt(), "-"])
    report.table(
        "Stiffness: work against L (alpha = 1000 unless marked)",
        ["L", "states", "eta*lambda_1", "lambda_1/lambda_L", "rhs call (us)", "LSODA rhs evals (tight run)",
         "rhs share of LSODA time", "DOP853 on cfunc: rhs evals (tight), s (both runs)",
         "heyoka Taylor float64 (tol 1e-12): steps", "Taylor MPFR 30 digits: steps (both runs)"],
        rows,
        ["LSODA's rhs evaluations include its finite-difference Jacobians (n evaluations each); the rest of "
         "its time is its dense LU factorisations and solves (n x n), not the rhs.",
         "DOP853 and float64 Taylor run on the engine's own compiled expressions (bench-only alternatives, "
         "same verification as solve(): 10x looser run for DOP853; Taylor counted against new's tight run)."])


def _agree(a, b):
    if not a or not b:
        return "-"
    return min(agreed_digits(x, y, FLOAT_DIGITS) for x, y in zip(a["eps"], b["eps"]))


def report_taylor(report, taylor):
    rows = []
    for prep, end, new, t_new, old, t_old, compile_t in taylor:
        estimate = taylor_estimate(prep, grid(end), 30)
        rows.append([prep.L, prep.n, f"{float(end):g}", prep.t_cold.fmt(), prep.t_warm.fmt(), prep.t_convert.fmt(),
                     compile_t.fmt(), t_new.fmt(True), T(new["integration"], 0).fmt() if new else "-",
                     dmin(new), new["steps"] if new else "-",
                     f"{estimate:.3g}" if estimate else "-",
                     t_old.fmt(True) if old is not None or (t_old.wall is not None) else "not run",
                     dmin(old), old["steps"] if old else "-", ratio(t_old, t_new) if t_old.wall else "-"])
    report.table(
        "30 digits (new: solve(digits=30), heyoka Taylor in MPFR; old: mpmath Bulirsch-Stoer)",
        ["L", "states", "alpha", "derive cold", "derive warm", "convert", "compile (both MPFR Taylor builds, cold)",
         "new end-to-end (warm)", "new integration", "new digits", "new steps", "solve()'s estimate (s)",
         "old end-to-end (warm)", "old digits", "old steps", "old/new"],
        rows,
        ["new integration = Solution.stats['seconds']: two runs (bits and bits + 64), each building its own "
         "Taylor integrator (here a heyoka cache hit: the compile column was measured first).",
         "old = bench/baseline.py integrate_mp (two runs, 64 more bits), only where affordable (alpha = 2 at "
         "L = 4 in the full run).",
         "solve()'s estimate: the a-priori cost that max_seconds is checked against."])


def report_long(report, long):
    prep, end, new, t_new, dop, t_dop, tay, t_tay, prof = long
    setup = prep.t_warm + prep.t_convert + prep.t_compile_cached + prep.t_values
    rows = [["new (engine†: LSODA pair)", t_new.fmt(True), dmin(new), new["nfev"] if new else "-",
             (setup + t_new).fmt()],
            ["DOP853 pair on the cfunc", t_dop.fmt(True), dmin(dop), dop["nfev"] if dop else "-",
             (setup + t_dop).fmt()],
            ["heyoka Taylor float64, one run", (tay["integration"] + tay["compile"]).fmt(True) if tay else t_tay.fmt(),
             f"{_agree(tay, new)} vs new" if tay and new else "-", tay["steps"] if tay else "-",
             (setup + tay["integration"] + tay["compile"]).fmt() if tay else (setup + t_tay).fmt()]]
    notes = [f"setup (warm derivation {prep.t_warm.fmt()} + convert {prep.t_convert.fmt()} + compile, cached, "
             f"{prep.t_compile_cached.fmt()} + per-group table {prep.t_values.fmt()}) = {setup.fmt()} s; cold: "
             f"derivation {prep.t_cold.fmt()} s, compile {prep.t_compile.fmt()} s."]
    if prof:
        t = prof["time"]
        share = 100 * prof["rhs_seconds"] / t.wall if t.wall else 0
        notes.append(f"LSODA counted (the engine's tight run replayed with counters; {t.fmt(True)} s, budget "
                     f"{prof['limit']} s): "
                     f"{'finished' if prof['finished'] else 'stopped'} at alpha = {prof['reached']:.4g} of {end:g}; "
                     f"{prof['nfev']} rhs evaluations taking {prof['rhs_seconds']:.3g} s ({share:.0f} % of the "
                     f"run; the rest is LSODA's own linear algebra); Jacobians {prof['njev']}, LU factorisations "
                     f"{prof['nlu']} (each Jacobian by finite differences costs {prep.n} rhs evaluations and each LU "
                     f"~ {prep.n}^3/3 = {prep.n ** 3 / 3:.2g} flops).")
    report.table(
        f"float64 L = {prep.L} to alpha = {end:g} ({prep.n} states)",
        ["route", "integration (s)", "digits (min)", "rhs evals / steps", "with warm derivation + convert + compile"],
        rows, notes)


def true_digits(values, reference, alphas):
    """-log10 of the largest relative error against `reference` over alpha > 0 (None if not finite)."""
    errs = [e for e, a in zip(rel_errors(values, reference), alphas) if a > 0]
    worst = max(errs)
    if not math.isfinite(worst):
        return None
    return -math.log10(worst) if worst > 0 else math.inf


def report_accuracy(report, floats, refs):
    rows = []
    for L, rec in sorted(floats.items()):
        end = rec["alphas"][-1]
        ref = refs.get(("30", L, end))
        if ref is None:
            continue
        cells = [L, f"{float(end):g}"]
        for key in ("new", "old", "dop", "tay", "euler"):
            res = rec.get(key)
            if res is None:
                cells.append("-")
                continue
            got = true_digits(res["eps"], ref["eps"], rec["alphas"])
            claim = f" (claims {min(res['digits'])})" if "digits" in res else ""
            cells.append(("diverged" if got is None else f"{got:.1f}") + claim)
        rows.append(cells)
    if rows:
        report.table(
            "float64 accuracy against the verified 30-digit curve (true digits = -log10 max relative error, alpha > 0)",
            ["L", "alpha", "new (LSODA pair)", "old (DOP853 1e-9/1e-11)", "DOP853 pair on cfunc", "Taylor float64",
             "Euler dt = 0.01"], rows,
            ["claims = the digits the route itself reports (min over alpha)."])


def report_euler(report, rows_in):
    rows = []
    for L, end, kind, ref, rec, res, t_eu in rows_in:
        alphas = rec["alphas"]
        picks = [i for i, a in enumerate(alphas) if a in (10, 100, 1000)]
        if res is None:
            rows.append([L, kind, "-", "-", "-", t_eu.fmt(), rec["t_new"].fmt()])
            continue
        errs = rel_errors(res["eps"], ref["eps"])
        rows.append([L, "30 digits" if kind == "30" else f"float64 ({dmin(ref)} digits)",
                     *[f"{errs[i]:.2g}" for i in picks], t_eu.fmt(True), rec["t_new"].fmt(),
                     f"{min(rec['new']['digits'])}" if rec.get("new") else "-"])
    report.table(
        f"Fixed-step Euler, dt = {float(EULER_DT):g}, on the engine's compiled float64 rhs",
        ["L", "reference", "rel. error alpha=10", "alpha=100", "alpha=1000", "Euler time (s)",
         "new float64 end-to-end (s)", "new digits"],
        rows,
        ["Euler's time is the integration alone (compile excluded); the new path's is end-to-end, both runs."])


def report_huge(report, row):
    L, end, limit, stages = row
    cells = [f"{k}: {v.fmt(True) if isinstance(v, T) else v}" for k, v in stages.items()]
    report.text(f"### float64 L = {L} to alpha = {end:g}, budget {limit} s\n\n" + "; ".join(cells) + "\n")


def report_targets(report, floats, taylor, long, quick):
    lines = ["### Targets (reported, not asserted)", ""]
    rec = floats.get(64)
    if rec and rec.get("new") and rec.get("old"):
        e2e = rec["t_old"].wall / rec["t_new"].wall
        cpu = rec["t_old"].cpu / rec["t_new"].cpu
        integ = rec["old"]["integration"] / rec["new"]["integration"]
        d = min(rec["new"]["digits"])
        lines.append(f"- L = 64, alpha = 1000, float64 >= 15x faster than old with >= 8 digits at every alpha: "
                     f"end-to-end {e2e:.3g}x (cpu {cpu:.3g}x), integration {integ:.3g}x, min digits {d} -> "
                     f"{'MET' if e2e >= 15 and d >= 8 else 'MISSED'}")
    else:
        lines.append("- L = 64 float64 target: not measured in this run")
    t16 = [x for x in taylor if x[0].L == 16 and x[1] == 1000]
    if t16:
        prep, end, new, t_new, *_ = t16[0]
        lines.append(f"- 30 digits, L = 16, alpha = 1000 within 300 s: {t_new.fmt(True)} s, min digits {dmin(new)} -> "
                     f"{'MET' if new and t_new.wall <= 300 else 'MISSED'}")
    if long:
        prep, end, new, t_new, *_ = long
        setup = prep.t_warm + prep.t_convert + prep.t_compile_cached + prep.t_values
        total = setup + t_new
        lines.append(f"- float64 L = 256, alpha = 10^4 within 60 s: {total.fmt(True)} s "
                     f"(integration {t_new.fmt()} s) -> {'MET' if new and total.wall <= 60 else 'MISSED'}")
    rec = floats.get(256)
    if rec:
        prep = rec["prep"]
        s = prep.t_setup_cold
        lines.append(f"- derivation + compilation at L = 256 <= 30 s cold: derive {prep.t_cold.fmt()} + convert "
                     f"{prep.t_convert.fmt()} + compile {prep.t_compile.fmt()} = {s.fmt(True)} s -> "
                     f"{'MET' if s.wall <= 30 else 'MISSED'}; solve() adds its exact overlap table: "
                     f"{rec['t_values'].fmt()} s")
    if quick:
        lines.append("- (quick run: only the small cases)")
    report.text("\n".join(lines) + "\n")


def header(elapsed, quick):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    load = os.getloadavg()
    return "\n".join([
        "# bench/bench_engine.py results" + (" (--quick)" if quick else ""), "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: nproc = {os.cpu_count()}, {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(other engineers' test runs share the 2 cores: wall times are inflated, CPU times less so)",
        f"- commit: {commit}{' (working tree has uncommitted changes)' if dirty else ''}; heyoka {hy.__version__}, "
        f"numpy {np.__version__}, mpmath {mpmath.__version__}",
        f"- total benchmark time: {elapsed:.0f} s", ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small cases only (< 2 min); writes nothing")
    args = parser.parse_args(argv)
    report, elapsed = run(args.quick)
    head = header(elapsed, args.quick)
    print("\n" + head)
    if not args.quick:
        out = HERE / "results_engine.md"
        out.write_text(head + "\n" + "\n".join(report.sections) + "\n")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
