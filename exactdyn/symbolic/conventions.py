"""Conventions of the teacher-student setup: output weights and width limits (docs/model.md)."""
import sympy as sp

OUTPUT_WEIGHTS = ("one", "sqrt", "mean")
MAX_WIDTH = 64


def output_weight(convention, width):
    """The fixed output weight of each of `width` hidden units, exact (sympy)."""
    return {"one": sp.Integer(1), "sqrt": 1 / sp.sqrt(width), "mean": sp.Rational(1, width)}[convention]
