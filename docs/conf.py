"""Sphinx configuration for gdreg's documentation.

Build the HTML pages (warnings are errors) and run the doctests with::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

Both work without network access. See the intersphinx section below for how
links to scikit-learn, NumPy and SciPy are resolved offline.
"""

import os
import re
import sys
import zlib
from pathlib import Path

from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
# The user guide's array API example needs SciPy's array API support, which
# SciPy reads once, when it is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import gdreg  # noqa: E402

project = "gdreg"
author = "the gdreg developers"
copyright = "the gdreg developers"
version = release = gdreg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# examples/ holds the gallery's sources; sphinx-gallery turns them into
# auto_examples/, which is what the toctree lists.
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]
default_role = "literal"
pygments_style = "sphinx"

# --- API reference ----------------------------------------------------------
# autosummary writes one page per class into generated/; numpydoc renders the
# docstrings. The class template lists every public method, inherited ones
# (score, get_params, set_params, metadata-routing setters) included.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# --- Doctests ---------------------------------------------------------------
# Plain ``>>>`` blocks in the guide and in the docstrings are tested by the
# doctest builder. Every group starts with numpy printing in its default form.
doctest_global_setup = """
import numpy as np
np.set_printoptions(legacy=False)
"""
doctest_test_doctest_blocks = "default"

# --- Intersphinx, offline ---------------------------------------------------
# The build has no network access, and a failed download of an objects.inv is
# a warning, which -W turns into an error. So by default each project's
# inventory is a small local file written below from ``_inventory.py``: it
# lists only the objects these pages link to, with their public URLs, so the
# links in the HTML are the real ones. With GDREG_DOCS_INTERSPHINX=1 the full
# inventories are fetched first and the local files are the fallback, which
# intersphinx uses silently when the download fails.
from _inventory import INVENTORIES  # noqa: E402

_INVENTORY_DIR = DOCS / "_build" / "_offline_inventories"


def _write_inventory(name, spec):
    """Write one project's local objects.inv (format version 2)."""
    _INVENTORY_DIR.mkdir(parents=True, exist_ok=True)
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {spec['project']}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(
        f"{name} {role} {-1 if role.startswith('std:') else 1} "
        f"{uri.replace('$', name)} {shown}\n"
        for name, role, uri, shown in spec["objects"]
    )
    path = _INVENTORY_DIR / f"{name}.inv"
    path.write_bytes(header.encode() + zlib.compress(body.encode()))
    return str(path)


_online = os.environ.get("GDREG_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = {}
for _name, _spec in INVENTORIES.items():
    _local = _write_inventory(_name, _spec)
    _locations = (None, _local) if _online else (_local,)
    intersphinx_mapping[_name] = (_spec["url"], _locations)
intersphinx_timeout = 10

# --- Examples gallery -------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "doc_module": ("gdreg",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"gdreg": None},
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
}

# --- Benchmarks -------------------------------------------------------------
# benchmarks.md includes the report written by ``python benchmarks/run.py``.
# If it is missing the build stops here with the command that makes it, rather
# than rendering an empty page. The doctest builder does not need it.
BENCHMARK_REPORT = ROOT / "benchmarks" / "results" / "report.md"


def _check_benchmark_report(app):
    if app.builder.name == "doctest":
        return
    report = BENCHMARK_REPORT.relative_to(ROOT)
    if not BENCHMARK_REPORT.is_file():
        _stop(
            f"The benchmarks page needs {report}, which does not exist. Run "
            "`python benchmarks/run.py` from the repository root first (it writes "
            "the report and its figures to benchmarks/results/), then build the "
            "documentation again."
        )
    missing = [
        image
        for image in _markdown_images(BENCHMARK_REPORT.read_text())
        if not (BENCHMARK_REPORT.parent / image).is_file()
    ]
    if missing:
        _stop(
            f"{report} shows figures that are not in benchmarks/results/: "
            f"{', '.join(missing)}. Run `python benchmarks/run.py` again to write "
            "them, then build the documentation again."
        )


def _stop(message):
    """End the build with one clear error line and exit status 1.

    An exception raised in an event handler would bury the message under
    Sphinx's crash report, which asks for a bug report that is not needed.
    """
    logging.getLogger("gdreg.docs").error(message)
    raise SystemExit(1)


def _markdown_images(text):
    """Relative paths of the images in a Markdown text, ``![alt](path)``."""
    return [
        path
        for path in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
        if "://" not in path
    ]


def setup(app):
    # Priority 100: before sphinx-gallery runs the examples, so a missing
    # report stops the build at once.
    app.connect("builder-inited", _check_benchmark_report, priority=100)


# --- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gdreg {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": []}

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
