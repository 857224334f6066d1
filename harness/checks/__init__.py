"""Check kinds. Importing this package registers every built-in kind in ``REGISTRY``."""

from harness.checks import attestation, binding, bundle, dataset, expression, http, profile, property, structure, values
from harness.checks.registry import REGISTRY, CheckKind, Registry, RuleContext

__all__ = ["REGISTRY", "CheckKind", "Registry", "RuleContext", "attestation", "binding", "bundle", "dataset",
           "expression", "http", "profile", "property", "structure", "values"]
