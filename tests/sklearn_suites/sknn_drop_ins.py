"""A pytest plugin: scikit-learn's own test suites, as installed with it, run against sknn_tune's
drop-ins (the names rebound here, before the suites import them; no test is copied).

    python -m pytest -p sknn_drop_ins --pyargs sklearn.model_selection.tests.test_search ...

with this folder on ``PYTHONPATH`` (``.ci/run`` runs it so). The tests that check something our
drop-ins differ in by design are skipped below, each with its reason.
"""

import pytest
import sklearn.ensemble
import sklearn.model_selection

import sknn_tune
from sknn_tune import ensemble, model_selection

DROP_INS = {
    sklearn.model_selection: {
        "GridSearchCV": sknn_tune.FusedGridSearchCV,
        "RandomizedSearchCV": sknn_tune.FusedRandomizedSearchCV,
        "HalvingGridSearchCV": sknn_tune.FusedHalvingGridSearchCV,
        "HalvingRandomSearchCV": sknn_tune.FusedHalvingRandomSearchCV,
        **{name: getattr(model_selection, name) for name in model_selection.__all__},
    },
    sklearn.ensemble: {
        "BaggingClassifier": ensemble.FusedBaggingClassifier,
        "BaggingRegressor": ensemble.FusedBaggingRegressor,
    },
}

# test id (its name, without parameters) -> why it does not apply to a drop-in
SKIPPED = {}


def pytest_configure(config):
    for module, names in DROP_INS.items():
        for name, drop_in in names.items():
            setattr(module, name, drop_in)


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = SKIPPED.get(item.originalname or item.name)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
