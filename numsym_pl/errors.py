"""Errors the command line reports as one clear line (no traceback) and a non-zero exit."""


class NumSymError(Exception):
    """Base of the errors the CLI prints as ``error: <message>``."""

    exit_code = 1


class ConfigError(NumSymError, ValueError):
    """An invalid setting; the message starts with the name of the offending field or file."""

    exit_code = 2


class TrainingDiverged(NumSymError, FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""
