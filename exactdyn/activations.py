"""Activations by name: the built-in ones, and your own (an Activation subclass or a Polynomial)
made known with register_activation, after which every command and file may name it."""
from .symbolic.expectations import (Activation, Erf, Polynomial, Relu, activation_from_name,  # noqa: F401
                                    activation_names, register_activation)
from .symbolic.quadrature_activations import QuadratureActivation, Sigmoid, Tanh  # noqa: F401  (registers them)

__all__ = ["Activation", "Erf", "Polynomial", "QuadratureActivation", "Relu", "Sigmoid", "Tanh", "activation_from_name",
           "activation_names", "register_activation"]
