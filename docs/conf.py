"""Sphinx configuration for the sknn_tune documentation.

Build (from the repository root; warnings are errors, the gallery is executed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Environment switches:

- ``SKNN_DOCS_INTERSPHINX=1`` links to the scikit-learn, PyTorch, NumPy, pandas and Python docs. It
  downloads their inventories, so it is off by default: CI builds offline.
- ``SKNN_DOCS_PLOT_GALLERY=0`` skips running the gallery examples (a quick build of the pages).
- ``SKNN_DOCS_GALLERY_PATTERN`` is a regular expression choosing which ``examples/plot_*.py`` run
  (default ``/plot_``), e.g. ``SKNN_DOCS_GALLERY_PATTERN=plot_dropout`` while writing one example.
- ``SKNN_DOCS_TORCH_THREADS`` sets torch's CPU threads for the gallery (default 1).
"""

import importlib
import os
import pkgutil
import re
import sys
import warnings
from pathlib import Path

import matplotlib
import torch

matplotlib.use("agg")  # before anything imports pyplot: the gallery runs headless
# The gallery's small networks train fastest on one thread, and CI's two cores are shared (two
# threads on a busy machine are many times slower). SKNN_DOCS_TORCH_THREADS overrides.
torch.set_num_threads(int(os.environ.get("SKNN_DOCS_TORCH_THREADS", "1")))

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

from sphinx.util import logging as sphinx_logging  # noqa: E402

import sknn_tune  # noqa: E402

logger = sphinx_logging.getLogger("sknn_tune.docs")


def _flag(name, default):
    return os.environ.get(name, default).strip().lower() not in ("0", "false", "no", "off", "")


# -- project -------------------------------------------------------------------------------------

project = "sknn_tune"
author = "the sknn_tune developers"
copyright = "the sknn_tune developers"
release = sknn_tune.__version__
version = re.match(r"\d+\.\d+", release).group(0)

# -- general -------------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"  # `x` renders as code, as in numpydoc docstrings
# Unresolved references (sklearn / torch objects when intersphinx is off) must not fail -W builds.
nitpicky = False
add_function_parentheses = False
pygments_style = "sphinx"

# -- autodoc / autosummary -----------------------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc sections carry the types
autoclass_content = "class"

# -- numpydoc ------------------------------------------------------------------------------------

numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Moderate validation: every parameter documented, with a type and a description, and no
# parameter documented that does not exist; Returns with descriptions; a one-line summary that
# starts with a capital and ends with a period; known section names in order. Not checked: the
# order of parameters (the estimators document their shared parameters as one block, then their
# own), See Also / Examples presence (tests and review keep those), extended summaries.
numpydoc_validation_checks = {
    "GL02", "GL03", "GL05", "GL06", "GL07",
    "SS01", "SS02", "SS03",
    "PR01", "PR02", "PR04", "PR05", "PR07", "PR10",
    "RT03",
}
# scikit-learn's own methods inherited by the estimators are sklearn's to keep (and pass already).
# The interop classes take skorch's / torch's constructor arguments unchanged; skorch documents them.
numpydoc_validation_exclude = {
    r"\.get_params$", r"\.set_params$", r"\.get_metadata_routing$",
    r"\.set_\w+_request$", r"\.__sklearn_tags__$", r"\.score$",
    r"^sknn_tune\.interop\.(SkorchMLPClassifier|SkorchMLPRegressor|SoftmaxSquaredError)$",
}

# -- intersphinx ---------------------------------------------------------------------------------
# Off unless asked for: the inventories come from the network and CI has none. Cross-references to
# scikit-learn or torch objects then render as plain code instead of links; nothing warns.

if _flag("SKNN_DOCS_INTERSPHINX", "0"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }
    intersphinx_timeout = 10
else:
    intersphinx_mapping = {}
intersphinx_disabled_reftypes = ["*"] if not intersphinx_mapping else ["std:doc"]

# -- doctest (``python -m sphinx -b doctest docs docs/_build/doctest``) ---------------------------

doctest_global_setup = "import numpy as np"

# -- sphinx-gallery ------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": os.environ.get("SKNN_DOCS_GALLERY_PATTERN", "/plot_"),
    "ignore_pattern": r"__init__\.py|/_[^/]*\.py$",
    "plot_gallery": "True" if _flag("SKNN_DOCS_PLOT_GALLERY", "1") else "False",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib", "seaborn"),
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sknn_tune",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sknn_tune": None},
    "remove_config_comments": True,
    "download_all_examples": False,
    "min_reported_time": 1,
    "show_memory": False,
    "capture_repr": ("_repr_html_", "__repr__"),
}

# -- html ----------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sknn_tune {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": [], "getting_started": [], "comparison": [], "changelog": []}
html_show_sourcelink = True
html_copy_source = True

# -- build-time helpers --------------------------------------------------------------------------

GENERATED = DOCS / "generated"


def _api_names_listed(api_rst):
    """Names listed in the autosummary tables of ``api.rst``."""
    names, in_table = set(), False
    for line in api_rst.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(".. autosummary::"):
            in_table = True
            continue
        if in_table:
            if stripped and not line.startswith(" "):
                in_table = False
            elif stripped and not stripped.startswith(":") and not stripped.startswith(".."):
                names.add(stripped.rsplit(".", 1)[-1])
    return names


def _public_names():
    """``{name: module}`` for the ``__all__`` of sknn_tune and of its public submodules."""
    names = {name: "sknn_tune" for name in sknn_tune.__all__}
    for info in pkgutil.iter_modules(sknn_tune.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"sknn_tune.{info.name}")
            for name in getattr(module, "__all__", ()):
                names.setdefault(name, module.__name__)
    return names


def check_api_reference(app):
    """Warn (an error under ``-W``) when a public name is missing from api.rst."""
    listed = _api_names_listed(DOCS / "api.rst")
    missing = sorted(f"{module}.{name}" for name, module in _public_names().items()
                     if name not in listed)
    if missing:
        logger.warning("docs/api.rst does not list these public names (from __all__): %s. "
                       "Add each to an autosummary table there.", ", ".join(missing))


def check_user_guide_parameters(app):
    """Warn when a constructor parameter of an estimator is not discussed in user_guide.rst."""
    text = (DOCS / "user_guide.rst").read_text(encoding="utf-8")
    for estimator in (sknn_tune.MLPClassifier, sknn_tune.MLPRegressor):
        missing = sorted(name for name in estimator().get_params(deep=False)
                         if f"``{name}``" not in text)
        if missing:
            logger.warning("docs/user_guide.rst does not discuss these parameters of %s: %s.",
                           estimator.__name__, ", ".join(missing))


def _local_labels():
    """Reference labels this documentation defines (its pages and its gallery)."""
    labels = set()
    for page in [*DOCS.glob("*.rst"), ROOT / "examples" / "README.txt"]:
        if page.exists():
            labels.update(re.findall(r"^\.\. _([^:]+):\s*$", page.read_text(encoding="utf-8"), re.M))
    for example in (ROOT / "examples").glob("*.py"):
        labels.add(f"sphx_glr_auto_examples_{example.name}")
    return {label.lower() for label in labels}


_REF = re.compile(r":ref:`(?:([^`<]*?)\s*<([^`>]+)>|([^`<]+))`", re.S)
_TERM = re.compile(r":term:`(?:([^`<]*?)\s*<[^`>]+>|([^`<]+))`", re.S)


def plain_foreign_references(app, what, name, obj, options, lines):
    """Without intersphinx, show scikit-learn's ``:ref:`` and ``:term:`` roles as plain text.

    The fused searches inline scikit-learn's parameter documentation, which refers to its user
    guide and glossary; offline those targets do not exist and Sphinx would warn.
    """
    if intersphinx_mapping or not name.startswith("sknn_tune"):
        return
    text = "\n".join(lines)
    if ":ref:`" not in text and ":term:`" not in text:
        return
    local = _local_labels()

    def plain(words):
        words = " ".join(words.split())
        # an identifier (``classes_``) stays code; a trailing "_" would otherwise make a link
        return f"``{words}``" if re.fullmatch(r"[\w.]*_[\w.]*", words) else words

    def ref(match):
        title, label, bare = match.groups()
        if (label or bare).strip().lower() in local:
            return match.group(0)
        if label:
            return plain(title)
        if bare.strip().startswith("sphx_glr_"):
            return "a scikit-learn gallery example"
        return bare.strip().replace("_", " ")  # a bare label: "scoring_callable"

    text = _TERM.sub(lambda m: plain(m.group(1) or m.group(2)), _REF.sub(ref, text))
    lines[:] = text.split("\n")


def _markdown_cell_to_rst(cell):
    cell = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"`\1 <\2>`__", cell.strip())  # [text](url)
    return "\\" + cell if re.match(r"[-*+#|](\s|$)", cell) else cell  # not a list item


def _markdown_table_to_rst(lines):
    """A GitHub-style pipe table as an rst ``list-table``."""
    rows = [[_markdown_cell_to_rst(cell) for cell in line.strip().strip("|").split("|")]
            for line in lines]
    rows = [row for row in rows
            if not all(re.fullmatch(r"\\?:?-{2,}:?", cell or "--") for cell in row)]
    width = max(len(row) for row in rows)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        row = row + [""] * (width - len(row))
        out.append(f"   * - {row[0] or ' '}")
        out.extend(f"     - {cell or ' '}" for cell in row[1:])
    return out


def write_benchmark_tables(app):
    """Turn the tables of ``benchmarks/README.md`` into ``generated/benchmarks.inc``.

    The user guide includes that file, so the published figures are always the ones the benchmark
    README records; the page says where and on what hardware they were measured.
    """
    GENERATED.mkdir(exist_ok=True)
    source = ROOT / "benchmarks" / "README.md"
    out = []
    if source.exists():
        lines = source.read_text(encoding="utf-8").splitlines()
        heading, i = None, 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            if line.lstrip().startswith("|"):
                block = []
                while i < len(lines) and lines[i].lstrip().startswith("|"):
                    block.append(lines[i])
                    i += 1
                if heading:
                    out += [f"**{heading}**", ""]
                out += [*_markdown_table_to_rst(block), ""]
                continue
            i += 1
    if not out:
        out = [".. note::", "",
               "   ``benchmarks/README.md`` records no result tables yet: run the scripts in",
               "   ``benchmarks/`` and paste their tables there to publish them here.", ""]
    text = "\n".join(out) + "\n"
    target = GENERATED / "benchmarks.inc"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app):
    # generated/benchmarks.inc must exist before Sphinx reads the pages that include it
    write_benchmark_tables(app)
    app.connect("builder-inited", check_api_reference)
    app.connect("builder-inited", check_user_guide_parameters)
    app.connect("autodoc-process-docstring", plain_foreign_references, priority=600)  # after numpydoc
    warnings.filterwarnings("ignore", category=UserWarning,
                            message="Matplotlib is currently using agg")
