"""care-assure: conformance and accreditation harness for digital social care records."""

__version__ = "0.1.0"
