"""The package version (read by reports, plans and benchmarks without importing the package's front doors)."""
__version__ = "0.1.0"
