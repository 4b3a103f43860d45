"""Symbolic derivations with sympy (imported only when this package is used)."""
