"""The perceptron classifier trained by one-pass SGD (docs/model.md section 3).

    rules       update rules ("losses") and the closed-form averages derived for them
    quadrature  the averages of any rule by certified (arb) and fast (float64) quadrature
    dynamics    the per-group ODEs, eps_g and the norm, solved in float64
    sgd         the finite-N simulation and its comparison with the ODE
"""
from .dynamics import Perceptron, State, Trajectory, averages, eps_g, rhs, solve
from .quadrature import certified_averages, fast_averages
from .rules import closed_form_averages, rule, rule_names
from .sgd import Comparison, Simulation, compare, compare_deterministic, compare_summary, simulate

__all__ = ["Perceptron", "State", "Trajectory", "averages", "eps_g", "rhs", "solve", "certified_averages",
           "fast_averages", "closed_form_averages", "rule", "rule_names", "Comparison", "Simulation", "compare",
           "compare_deterministic", "compare_summary", "simulate"]
