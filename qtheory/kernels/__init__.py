"""numba kernels. numba is imported only inside this package.

Each kernel is one ``@numba.njit(cache=True)`` function with explicit casts and
no validation: the public wrappers validate once before calling them.
"""
