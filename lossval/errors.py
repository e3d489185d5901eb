"""Exceptions raised by the library."""

from __future__ import annotations


class NotFittedError(AttributeError):
    """A learned attribute (ending in ``_``) was read before ``fit``."""


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or inf; the message says which setting to change."""
