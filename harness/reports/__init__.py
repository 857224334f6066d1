"""Renderings of a run: the canonical report document and the formats derived from it."""
