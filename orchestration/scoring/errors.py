"""Errors of the scoring pipeline. Every message names the column or file to fix."""


class ScoringInputError(ValueError):
    """The lead list cannot be scored as given (missing label, one class, empty file...)."""


class LeakageError(ScoringInputError):
    """A feature gives the outcome away: equal to the label, or recorded after it."""
