"""Sections of scikit-learn's docstrings, reused in ours (the drop-ins take the same arguments)."""

import inspect
import re

__all__ = ["docstring_section"]


def docstring_section(obj, name):
    """The body of numpydoc section ``name`` (up to the next section) of ``obj``'s docstring,
    or None when it has none."""
    doc = inspect.cleandoc(obj.__doc__ or "")
    match = re.search(rf"^{name}\n-+\n(.*?)(?:\n\s*\n[A-Z][\w ]*\n-+\n|\Z)", doc, re.S | re.M)
    return None if match is None else match.group(1).rstrip()
