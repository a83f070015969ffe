"""The package version, in one place: the package, saved models and the build all read it here."""

__version__ = "0.1.0.dev0"
