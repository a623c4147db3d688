"""exactdyn: exact, arbitrary-precision dynamics of one-pass SGD in teacher-student networks."""
__version__ = "0.1.0"

from . import activations, errors  # noqa: E402
from .errors import ExactdynError, PrecisionError  # noqa: E402
from .spectrum import Spectrum, power_law, from_eigenvalues, isotropic  # noqa: E402
from .symbolic.expectations import Erf, Polynomial, activation_from_name  # noqa: E402
from .symbolic.hierarchy import Structure, derive_moment, derive_mode, derive_general_order, basis_map  # noqa: E402
from .symbolic.cache import derive  # noqa: E402
from .problem import InitialState, Problem, Solution, Status  # noqa: E402
from .solve import solve  # noqa: E402

__all__ = ["Problem", "InitialState", "Solution", "Status", "solve", "power_law", "from_eigenvalues", "isotropic",
           "Spectrum", "derive", "activations", "errors", "ExactdynError", "PrecisionError", "Erf", "Polynomial",
           "activation_from_name", "Structure", "derive_moment", "derive_mode", "derive_general_order", "basis_map"]
