"""Errors that mean the user asked for something wrong; the CLI prints them without a traceback."""


class RlkitError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class ConfigError(RlkitError, ValueError):
    """A config value is invalid, or an environment and an agent do not fit together."""


class RunDirError(RlkitError, FileNotFoundError):
    """A run directory or checkpoint is missing, incomplete or corrupt."""
