"""Errors the runtime raises for an operator to read."""


class ConfigurationError(Exception):
    """The configuration is missing or wrong; the message says what to set."""
