"""Errors raised while compiling records from admin_api into the index."""

from __future__ import annotations


class PolicyError(ValueError):
    """A record from admin_api cannot be compiled (misconfiguration, not a denial).

    The builders log it loudly and compile the record in its most restrictive form.
    """
