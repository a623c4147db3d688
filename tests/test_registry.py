"""An activation defined outside the package, registered by name: derive -> solve -> simulate -> check."""
from fractions import Fraction
import io
import json

import mpmath
import numpy as np
import pytest

from exactdyn import InitialState, Problem, derive, power_law, solve
from exactdyn.activations import Activation, Polynomial, activation_names, register_activation
from exactdyn.cli import main
from exactdyn.errors import ExactdynError
from exactdyn.io.curves import write_simulation
from exactdyn.simulate.check import check
from exactdyn.simulate.sgd import simulate_curve

COEFFS = (0, 1, 0, Fraction(1, 3))  # g(x) = x + x^3 / 3


class OddCubic(Activation):
    """The same g written as a user's own class: Gaussian expectations by Wick's theorem (borrowed
    from Polynomial), numeric g and g' by hand."""

    name = "user_odd_cubic"

    def g(self, u):
        return u + u ** 3 / 3

    def _derive_expectation(self, derivs):
        return Polynomial(COEFFS).expectation(derivs)

    def numeric_g(self, x):
        return x + x ** 3 / 3

    def numeric_dg(self, x):
        return 1 + x ** 2


register_activation("odd_cubic", Polynomial(COEFFS))
register_activation("user_odd_cubic", OddCubic())


def test_registered_names_reach_the_command_line(capsys):
    assert {"linear", "erf", "odd_cubic", "user_odd_cubic"} <= set(activation_names())
    assert Polynomial(COEFFS).name == "odd_cubic"
    assert main(["derive", "--activation", "odd_cubic", "--K", "1", "--M", "1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["states"]
    with pytest.raises(ExactdynError, match="taken"):
        register_activation("odd_cubic", Polynomial((0, 1, 0, 1)))


def test_derived_systems_of_both_forms_give_one_curve():
    """The registered polynomial (inline Wick) and the user class (named intermediates) are two
    derivations of one model: their high-precision curves agree."""
    spectrum, alpha = power_law(2, 1), [0, 1, 2]
    curves = []
    for name in ("odd_cubic", "user_odd_cubic"):
        problem = Problem.named(name, 2, 1, spectrum, "0.05")
        assert derive(problem.structure, "mode").eps_g is not None
        sol = solve(problem, InitialState.expected(problem, "0.5"), alpha, digits=18)
        assert sol.ok and not sol.rigorous and min(sol.digits) == 18
        curves.append(sol.eps_g)
    with mpmath.workdps(30):
        for a, b in zip(*curves):
            assert abs(a - b) <= abs(b) * mpmath.mpf(10) ** -17


@pytest.mark.parametrize("name", ["odd_cubic", "user_odd_cubic"])
def test_simulation_passes_check_and_a_planted_error_fails(tmp_path, name):
    problem = Problem.named(name, 2, 1, power_law(2, 1), "0.05")
    curve = simulate_curve(problem, [0, 1, 2, 4], N=2048, seeds=range(8), sigma_J="0.5", init_seed=3)
    buf = io.StringIO()
    write_simulation(buf, curve, problem, "json", overlaps=True)
    path = tmp_path / "run.json"
    path.write_text(buf.getvalue())
    traj, report = check(path)
    assert traj.activation == name and report.consistent, report
    data = json.loads(buf.getvalue())
    data["eps_g"] = [1.1 * e for e in data["eps_g"]]
    path.write_text(json.dumps(data))
    _, report = check(path)
    assert not report.consistent and [r.quantity for r in report.rows if not r.ok] == ["eps_g"]
    assert np.all(np.isfinite(curve.mean))


def test_a_registered_output_format_serves_derive(capsys):
    from exactdyn.symbolic.render import format_names, register_format

    register_format("statenames", lambda system, structure: " ".join(map(str, system.states)) + "\n")
    assert "statenames" in format_names()
    assert main(["derive", "--activation", "erf", "--K", "1", "--M", "1", "--L", "2", "--basis", "mode",
                 "--format", "statenames"]) == 0
    assert capsys.readouterr().out.split() == ["r1_1_1", "q1_1_1", "r2_1_1", "q2_1_1"]
    with pytest.raises(ExactdynError):
        register_format("not a name", str)
