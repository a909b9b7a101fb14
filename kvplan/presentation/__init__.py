"""Presentation: one result object, rendered as rich tables for people or JSON for scripts."""
