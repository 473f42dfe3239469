"""The real Pacemaker lab for remotectl's tests: see lab.py, fixtures.py and README.md."""

from .lab import Lab, LabError, LabNode, LabTimeout, missing_prerequisites

__all__ = ["Lab", "LabError", "LabNode", "LabTimeout", "missing_prerequisites"]
