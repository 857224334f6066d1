"""FHIR R4 knowledge the harness needs at run time, derived from the R4 definitions."""
