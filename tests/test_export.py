"""Exported code (`derive --format python|c|julia`) against exactdyn's own 20-digit trajectories.

The Python module is imported from a temporary directory and the C file compiled into a shared
library; each is integrated by scipy (DOP853, rtol 1e-12) and its eps_g compared with
exactdyn.solve at 20 verified digits, for erf and quadratic K = M = 2, L = 3.  Julia is not
installed here, so the Julia file is only checked as text (blocks, brackets, names).
"""
import ast
import ctypes
from functools import lru_cache
import importlib.util
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy.integrate import solve_ivp
import sympy as sp

import exactdyn
from exactdyn import InitialState, Problem, derive, power_law
from exactdyn.cli import main
from exactdyn.solve import _values
from exactdyn.symbolic.export import c_code, julia_code, python_code
from exactdyn.symbolic.render import format_names
from exactdyn.symbolic.system import ODESystem

ALPHA = [0, 1, 5, 20, 50, 100]
TOLERANCE = 1e-10
ACTIVATIONS = ["erf", "quadratic"]


def _problem(activation):
    return Problem(activation, 2, 2, power_law(3, 1), "0.05")


@lru_cache(maxsize=None)
def _case(activation):
    """(system, structure, y0, p, reference eps_g at ALPHA) for one activation."""
    problem = _problem(activation)
    system = derive(problem.structure, "mode")
    y0, p = _values(system, problem, InitialState.expected(problem, "0.5"))
    reference = exactdyn.solve(problem, None, ALPHA, sigma_J="0.5", digits=20)
    assert all(d == 20 for d in reference.digits)
    as_floats = lambda values: np.array([float(v) for v in values])
    return system, problem.structure, as_floats(y0), as_floats(p), as_floats(reference.decimals())


def _deviation(rhs, eps_g, activation):
    """Largest relative deviation of eps_g along ALPHA from exactdyn's trajectory."""
    _, _, y0, p, reference = _case(activation)
    run = solve_ivp(rhs, (0, ALPHA[-1]), y0, method="DOP853", rtol=1e-12, atol=1e-15, t_eval=ALPHA, args=(p,))
    assert run.success, run.message
    values = np.array([eps_g(run.y[:, i], p) for i in range(len(ALPHA))])
    return float(np.max(np.abs(values / reference - 1)))


def _python_module(tmp_path, name, source):
    """The generated source, written to the test's temporary directory and imported from there."""
    path = tmp_path / f"exported_{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_python_module_follows_the_trajectory(tmp_path, activation):
    system = _case(activation)[0]
    module = _python_module(tmp_path, activation, python_code(*_case(activation)[:2]))
    assert module.STATE_NAMES == tuple(map(str, system.states))
    assert module.PARAM_NAMES == tuple(map(str, system.params))
    assert _deviation(module.rhs, module.eps_g, activation) < TOLERANCE


def test_python_module_imports_only_the_standard_numeric_modules():
    for activation in ACTIVATIONS:
        tree = ast.parse(python_code(*_case(activation)[:2]))
        imported = {a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for a in node.names}
        assert imported <= {"math", "numpy", "scipy.special"}, imported


def test_a_planted_coefficient_error_is_caught(tmp_path):
    """One equation scaled by 1 + 1e-6 in the generated source: the comparison must fail."""
    source = python_code(*_case("erf")[:2])
    line = next(x for x in source.splitlines() if x.endswith("# q1_1_1"))
    planted = line.replace(",  # q1_1_1", "*(1 + 1e-6),  # q1_1_1")
    module = _python_module(tmp_path, "erf", source.replace(line, planted))
    assert _deviation(module.rhs, module.eps_g, "erf") > 10 * TOLERANCE


def _c_library(tmp_path, activation, source):
    if shutil.which("gcc") is None:
        pytest.skip("SKIPPED LOUDLY: gcc is not installed, the exported C was not compiled")
    (tmp_path / "exported.c").write_text(source)
    build = subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-O2", "-shared", "-fPIC", "exported.c",
                            "-o", f"exported_{activation}.so", "-lm"], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    return ctypes.CDLL(str(tmp_path / f"exported_{activation}.so"))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_c_library_follows_the_trajectory(tmp_path, activation):
    system = _case(activation)[0]
    lib = _c_library(tmp_path, activation, c_code(*_case(activation)[:2]))
    vector = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")
    lib.exactdyn_rhs.argtypes = [vector, vector, vector]
    lib.exactdyn_rhs.restype = None
    lib.exactdyn_eps_g.argtypes = [vector, vector]
    lib.exactdyn_eps_g.restype = ctypes.c_double

    def rhs(t, y, p):
        dy = np.empty_like(y)
        lib.exactdyn_rhs(np.ascontiguousarray(y), p, dy)
        return dy

    eps_g = lambda y, p: lib.exactdyn_eps_g(np.ascontiguousarray(y), p)
    names = (ctypes.c_char_p * len(system.states)).in_dll(lib, "exactdyn_state_names")
    assert [n.decode() for n in names] == list(map(str, system.states))
    assert ctypes.c_int.in_dll(lib, "exactdyn_n_params").value == len(system.params)
    assert _deviation(rhs, eps_g, activation) < TOLERANCE


def _balanced(text):
    """Brackets matched, outside strings and comments."""
    code = re.sub(r'"[^"\n]*"|#[^\n]*', "", text)
    for opening, closing in ("()", "[]"):
        depth = 0
        for char in code:
            depth += (char == opening) - (char == closing)
            if depth < 0:
                return False
        if depth:
            return False
    return True


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_julia_text_is_well_formed(activation):
    """Julia is not installed: the text is checked for its blocks, brackets and names only."""
    system, structure = _case(activation)[:2]
    text = julia_code(system, structure)
    lines = text.splitlines()
    assert [x for x in lines if x.startswith("function ")] == ["function rhs!(du, u, p, t)", "function eps_g(u, p)"]
    assert lines.count("end") == 2 and _balanced(text)
    assert all(f'"{s}"' in text for s in (*system.states, *system.params))
    assigned = [int(i) for i in re.findall(r"^    du\[(\d+)\] = ", text, re.M)]
    assert assigned == list(range(1, len(system.states) + 1))
    assert "using SpecialFunctions" not in text  # erf's closed forms need asin and sqrt only


def test_constants_are_exact_in_every_language():
    system, structure = _case("erf")[:2]
    texts = {fmt: writer(system, structure) for fmt, writer in
             (("python", python_code), ("c", c_code), ("julia", julia_code))}
    for fmt, text in texts.items():
        code = text[text.index("rhs"):]  # past the header, which names the exactdyn version
        assert not re.search(r"\d\.\d*[1-9]|\de", code), fmt  # no decimal literal but whole doubles (2.0)
    assert "math.pi" in texts["python"] and "M_PI" in texts["c"] and re.search(r"\bpi\b", texts["julia"])
    assert "1.0/2.0" in texts["c"] and "//" not in texts["julia"]


def test_derive_cli_writes_the_c_code(capsys):
    assert {"python", "c", "julia"} <= set(format_names())
    assert main(["derive", "--activation", "erf", "--K", "2", "--M", "2", "--L", "3", "--basis", "mode",
                 "--format", "c"]) == 0
    out = capsys.readouterr().out
    assert out == c_code(*_case("erf")[:2])
    assert "void exactdyn_rhs(const double *y, const double *p, double *dy)" in out
    assert "double exactdyn_eps_g(const double *y, const double *p)" in out and "#include <math.h>" in out


def test_erf_itself_prints_in_each_language(tmp_path):
    """A toy system calling erf (the derived ones do not): math.erf, C99's erf, SpecialFunctions.erf."""
    x, a, h = sp.symbols("x a h")
    toy = ODESystem("toy", "mode", (), (x,), (), (a,), ((h, sp.erf(a * x / sp.sqrt(2))),), (-h / 3,), h**2,
                    (), ())
    module = _python_module(tmp_path, "toy", python_code(toy, None))
    expected = -math.erf(0.3 * 2.0 / math.sqrt(2)) / 3
    assert module.rhs(0.0, [0.3], [2.0]) == [pytest.approx(expected, rel=1e-15)]
    lib = _c_library(tmp_path, "toy", c_code(toy, None))
    lib.exactdyn_eps_g.argtypes = [ctypes.POINTER(ctypes.c_double)] * 2
    lib.exactdyn_eps_g.restype = ctypes.c_double
    y, p = (ctypes.c_double * 1)(0.3), (ctypes.c_double * 1)(2.0)
    assert lib.exactdyn_eps_g(y, p) == pytest.approx(9 * expected**2, rel=1e-15)
    text = julia_code(toy, None)
    assert "using SpecialFunctions: erf" in text and "sqrt(2)" in text


@pytest.mark.parametrize("fmt", ["python", "c", "julia"])
def test_quadrature_activations_are_refused_in_one_line(fmt, capsys):
    """tanh's expectations have no closed form: exported code cannot carry them (one line, exit 2)."""
    assert main(["derive", "--activation", "tanh", "--K", "1", "--M", "1", "--L", "1", "--format", fmt]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "TanhGaussian is evaluated by quadrature" in err
