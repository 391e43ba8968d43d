"""Errors the command line reports as one clear line (no traceback) and a non-zero exit."""


class ConfigError(ValueError):
    """An invalid setting; the message starts with the name of the offending field or file."""
