"""Pure domain core: values and functions with no I/O.

Nothing in this package may import from the adapter packages (``api``,
``engine``, ``channels``, ``analytics``, ``control``, ``contracts``) or from an
I/O library; ``tests/core/test_dependency_direction.py`` enforces it.
"""
