"""
Sphinx configuration of stalwart's documentation site.

Build it with ``.venv/bin/python -m sphinx -W -n -b html docs build/docs``
(after ``pip install -e '.[docs]'``); ``.ci/run`` does exactly that.
"""

from __future__ import annotations

import pathlib
import sys

from importlib.metadata import version as _version


HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "stalwart"
author = "The stalwart developers"
copyright = "the stalwart developers"  # Sphinx's name
release = _version("stalwart")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "stalwart_api",  # canonical stalwart.X names for cross-references
    "stalwart_figures",  # pictures drawn from the library on a FakeClock
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# Only the site's pages: ignore build output and scratch files.
exclude_patterns = ["_build", "_ext", "**/.pytest_cache"]

# A broken reference or a missing target fails the build (-W -n in CI).
nitpicky = True

myst_enable_extensions = ["colon_fence", "deflist"]
# "## Heading" anchors, so links like retry.md#jitter work on the site
# as they do on GitHub.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = False
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True}
# One parameter a line once a signature is longer than this.
python_maximum_signature_line_length = 72
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True


# Pictures drawn at build time (docs/_ext/stalwart_figures.py), appended
# to the end of these pages without editing them; figures.md shows them
# all, with longer captions.
_DRAWN = "Drawn at build time from the library on a FakeClock; see"
stalwart_figures_at_end = {
    "retry": [
        (
            "backoff",
            f"The wait before each attempt. {_DRAWN} {{ref}}`backoff-figure`.",
        ),
    ],
    "circuit-breaker": [
        (
            "breaker",
            f"A breaker's state against its calls. {_DRAWN} {{ref}}`breaker-figure`.",
        ),
    ],
    "rate-limiters": [
        (
            "token-bucket",
            f"A token bucket's level. {_DRAWN} {{ref}}`token-bucket-figure`.",
        ),
    ],
    "bulkhead": [
        (
            "bulkhead",
            f"A bulkhead's calls in flight and queued. {_DRAWN} {{ref}}`bulkhead-figure`.",
        ),
    ],
}

html_theme = "furo"
html_title = f"stalwart {release}"
html_static_path: list[str] = []

# intersphinx_mapping is set by the stalwart_api extension, to an inventory
# of the standard library it writes into the build directory: no network.
