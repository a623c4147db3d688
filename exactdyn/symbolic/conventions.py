"""The teacher-student setup: one immutable, validated object."""
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp

from ..errors import ExactdynError
from ..numbers import to_fraction
from .expectations import Activation, Polynomial, activation_from_name
from ..spectrum import Spectrum, isotropic

OUTPUT_WEIGHTS = ("one", "sqrt", "mean")
MAX_WIDTH = 64


def output_weight(convention, width):
    """The fixed output weight of each of `width` hidden units, exact (sympy)."""
    return {"one": sp.Integer(1), "sqrt": 1 / sp.sqrt(width), "mean": sp.Rational(1, width)}[convention]


def _width(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExactdynError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= value <= MAX_WIDTH:
        raise ExactdynError(f"{name} must be between 1 and {MAX_WIDTH}, got {value}")
    return value


@dataclass(frozen=True)
class Model:
    """Soft committee machine teacher-student setup (docs/model.md).

    Loss ``loss_factor * (sigma - zeta)^2``: 1/2 in the committee-machine papers, 1 in the
    quadratic-network paper.  Numbers are kept as exact Fractions.
    """

    activation: Activation
    K: int = 2
    M: int = 2
    output_weights: str = "one"
    teacher_output_weights: str = None
    eta: Fraction = Fraction(1, 2)
    spectrum: Spectrum = field(default_factory=isotropic)
    sigma_J: Fraction = Fraction(0)
    loss_factor: Fraction = Fraction(1, 2)

    def __post_init__(self):
        act = self.activation
        if isinstance(act, str):
            act = activation_from_name(act)
        elif isinstance(act, (tuple, list)):
            act = Polynomial(tuple(act))
        if not isinstance(act, Activation):
            raise ExactdynError(f"activation must be a name or polynomial coefficients, got {act!r}")
        object.__setattr__(self, "activation", act)
        _width(self.K, "K (student width)")
        _width(self.M, "M (teacher width)")
        if self.output_weights not in OUTPUT_WEIGHTS:
            raise ExactdynError(f"output weights must be one of {', '.join(OUTPUT_WEIGHTS)}, got {self.output_weights!r}")
        teacher = self.teacher_output_weights or self.output_weights
        if teacher not in OUTPUT_WEIGHTS:
            raise ExactdynError(f"teacher output weights must be one of {', '.join(OUTPUT_WEIGHTS)}, got {teacher!r}")
        object.__setattr__(self, "teacher_output_weights", teacher)
        eta = to_fraction(self.eta, "eta")
        if eta <= 0:
            raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
        object.__setattr__(self, "eta", eta)
        sigma_J = to_fraction(self.sigma_J, "sigma_J")
        if sigma_J < 0:
            raise ExactdynError(f"sigma_J must be >= 0, got {sigma_J}")
        object.__setattr__(self, "sigma_J", sigma_J)
        loss = to_fraction(self.loss_factor, "loss factor")
        if loss <= 0:
            raise ExactdynError(f"the loss factor must be positive, got {loss}")
        object.__setattr__(self, "loss_factor", loss)
        if not isinstance(self.spectrum, Spectrum):
            raise ExactdynError("spectrum must be an exactdyn Spectrum")

    @classmethod
    def quadratic_paper(cls, K, M, **kwargs):
        """docs/model.md section 2: quadratic activation, mean output weights, loss without 1/2."""
        kwargs.setdefault("output_weights", "mean")
        kwargs.setdefault("loss_factor", 1)
        return cls(Polynomial((0, 0, 1)), K, M, **kwargs)

    @property
    def L(self):
        return self.spectrum.L

    @property
    def student_weights(self):
        return tuple([output_weight(self.output_weights, self.K)] * self.K)

    @property
    def teacher_weights(self):
        return tuple([output_weight(self.teacher_output_weights, self.M)] * self.M)
