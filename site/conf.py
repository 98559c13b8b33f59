"""Sphinx configuration of the course website: `python3 course.py site` copies this folder and the notebooks into
build/site/source and renders them, with their committed outputs, into build/site/html."""

from declib.launch import BRANCH, REPOSITORY

project = "declib"
author = "the declib authors"
copyright = "the declib authors, MIT licence"
html_title = "declib · from k-means to Deep Embedded Clustering"

extensions = ["myst_nb", "sphinxcontrib.katex"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"          # the notebooks carry the outputs of a real run; nothing is executed here
nb_merge_streams = True
katex_prerender = True             # formulas are rendered at build time (Node.js runs KaTeX), no script needed later
# ... as MathML, which browsers lay out natively: KaTeX's HTML output would need its stylesheet and fonts, which
# sphinxcontrib-katex takes from a CDN, so an offline copy of the site would show every formula garbled
import sphinxcontrib.katex as _katex  # noqa: E402

_katex.KATEX_DEFAULT_OPTIONS = {**_katex.KATEX_DEFAULT_OPTIONS, "output": "mathml"}
_katex.STARTUP_TIMEOUT = _katex.RENDER_TIMEOUT = 60.0  # 5 s by default: too short for Node.js on a busy 2-core machine
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
