"""Errors exactdyn raises for input it cannot honour."""


class ExactdynError(ValueError):
    """Bad input or an unmet request; the CLI turns it into one line on stderr and exit 2."""


class PrecisionError(ExactdynError):
    """The digits asked for could not be certified at the precision allowed."""
