"""Emitters: turn a planned Program into source files."""
