"""Targets: what is tested. Export readers stream resources with where each came from."""
