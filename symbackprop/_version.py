"""The package version, in one place (printouts and generated files quote it)."""

__version__ = "0.1.0"
