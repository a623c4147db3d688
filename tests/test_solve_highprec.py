"""solve(digits=...) for nonlinear networks: 30-digit values against an independent computation."""
from fractions import Fraction
import json

import mpmath
import pytest

from exactdyn import power_law
from exactdyn.cli import main
from exactdyn.problem import InitialState, Problem, Status
from exactdyn.solve import solve


def _relative_gap(a, b):
    with mpmath.workdps(80):
        return abs(mpmath.mpf(a) - mpmath.mpf(b)) / abs(mpmath.mpf(b))


@pytest.mark.slow
def test_mode_basis_at_30_digits_against_the_moment_basis_at_60():
    """erf, K = M = 2, L = 16: the eigenmode system at 30 digits against the moment hierarchy at 60,
    another derived system (Cayley-Hamilton closure) and ill-conditioned, so that the two share only
    the derivation's first steps.  Every one of the 30 digits must hold; the eigenmode curve of a
    learning rate 1e-25 off must not."""
    problem = Problem("erf", 2, 2, power_law(16, 1), "1/2")
    initial = InitialState.expected(problem, "1/2", perturbation="1/10")
    alpha = [0, "1/4", 1]
    mode = solve(problem, initial, alpha, digits=30)
    moment = solve(problem, initial, alpha, digits=60, basis="moment")
    assert mode.status is moment.status is Status.OK and not mode.rigorous
    assert mode.digits == (30,) * 3 and moment.digits == (60,) * 3
    for a, b in zip(mode.eps_g, moment.eps_g):
        assert _relative_gap(a, b) < mpmath.mpf(10) ** -30
    off = Problem("erf", 2, 2, problem.spectrum, problem.eta * (1 + Fraction(1, 10 ** 25)))
    planted = solve(off, initial, alpha[1:], digits=30)
    for a, b in zip(planted.eps_g, moment.eps_g[1:]):
        assert _relative_gap(a, b) > mpmath.mpf(10) ** -30


def test_solve_digits_takes_the_high_precision_path_from_the_command_line(tmp_path, capsys):
    """`solve --digits 25` for erf: 25 verified (not certified) digits at every alpha, which the
    float64 run (its own verified digits) agrees with."""
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"eigenvalues": [2, 1], "weights": ["1/3", "2/3"], "r": [[[0.1]], [["1/20"]]],
                                "q": [[[0.2]], [[0.3]]], "t": [[["1/3"]], [["2/3"]]]}))
    base = ["solve", "--activation", "erf", "--K", "1", "--M", "1", "--eta", "0.5", "--init", str(init),
            "--alpha", "0,1,2", "--format", "json"]
    assert main(base) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(base + ["--digits", "25"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["digits"] == [25, 25, 25] and exact["rigorous"] is False and exact["status"] == "ok"
    assert exact["working_precision_bits"] > 53 == fast["working_precision_bits"]
    for f, d, e in zip(fast["eps_g"], fast["digits"], exact["eps_g"]):
        assert len(e.replace(".", "").split("e")[0].lstrip("0")) >= 25
        assert _relative_gap(f, e) <= mpmath.mpf(10) ** (1 - d)
