"""``python -m harness`` is the ``care-assure`` command."""

from harness.cli import main

main()
