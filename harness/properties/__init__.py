"""Hypothesis strategies for UK Core resources a social care record holds, valid and violating."""
