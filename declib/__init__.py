"""declib: the small, verified library behind the Deep Embedded Clustering course.

One module per idea of the course, in the order the notebooks meet them:

* :mod:`declib.data` — MNIST: IDX reader, verified cache, download, stratified subsets
* :mod:`declib.metrics` — clustering accuracy (Hungarian matching), NMI, ARI, mapped confusion matrix
* :mod:`declib.config` — the ``full``/``fast`` profile, seeding, the default device
* :mod:`declib.plots` — figures the notebooks share
"""

__version__ = "0.1.0"
