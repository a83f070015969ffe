"""The fused layer: many fits of a search, a cross-validation or a bagging ensemble trained as
members of stacked models, then fitted and scored by scikit-learn's own code.

A :class:`Session` per ``fit`` runs plan -> pack -> run -> register for each batch of fits and
serves the trained members to scikit-learn's fits (:meth:`Session.serving`). Its modules, one
job each:

* :mod:`.planners` -- what to train: candidates x folds (:class:`CVPlanner`) or an ensemble's
  members (:class:`BaggingPlanner`), planned as the estimator's ``fit`` would, with the data held
  by reference (:class:`Block`);
* :mod:`.packing` -- the memory model and the grouping of members into stacks (pure functions);
* :mod:`.jobs` -- one stack's training as a self-contained, picklable job;
* :mod:`.workers` -- threads, processes, dask or GPUs behind one ``run``; :mod:`.dask`;
* :mod:`.registry` -- trained members and the keys that find them;
* :mod:`.session` -- the session itself.

:mod:`sknn_tune.search`, :mod:`sknn_tune.model_selection` and :mod:`sknn_tune.ensemble` use this
package's names below and nothing else of it.
"""

from .planners import (
    RESOURCE_PARAMETER,
    BaggingPlanner,
    CVPlanner,
    same_splits,
    split_estimator,
)
from .session import MAX_MEMBERS_CONSTRAINT, Session

__all__ = [
    "MAX_MEMBERS_CONSTRAINT",
    "RESOURCE_PARAMETER",
    "BaggingPlanner",
    "CVPlanner",
    "Session",
    "same_splits",
    "split_estimator",
]
