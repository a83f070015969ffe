"""A pytest plugin: scikit-learn's own test suites, as installed with it, run against sknn_tune's
drop-ins (the names rebound here, before the suites import them; no test is copied).

    python -m pytest -p sknn_drop_ins --pyargs sklearn.model_selection.tests.test_search ...

with this folder on ``PYTHONPATH`` (``.ci/run`` runs it so). The tests that check something our
drop-ins differ in by design are skipped below, each with its reason.
"""

import pytest
import sklearn.ensemble
import sklearn.model_selection
import sklearn.neural_network

import sknn_tune
import sknn_tune.neural_network
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
    sklearn.neural_network: {
        "MLPClassifier": sknn_tune.neural_network.MLPClassifier,
        "MLPRegressor": sknn_tune.neural_network.MLPRegressor,
    },
}

# "suite::test" (the test module's last name, the test's name without parameters) -> why it does
# not apply to a drop-in
SKIPPED = {
    "test_bagging::test_estimator":
        "checks the default estimator (ours is sknn_tune's MLP, not a tree)",
    "test_bagging::test_warning_bootstrap_sample_weight":
        "matches a warning that names the class",
    "test_bagging::test_invalid_sample_weight_max_samples_bootstrap_combinations":
        "matches a warning that names the class",
    "test_mlp::test_gradient":
        "calls scikit-learn's private _loss_grad_lbfgs with its own packing and work arrays; "
        "tests/test_neural_network.py checks the engine's gradient against scikit-learn's",
}


def pytest_configure(config):
    for module, names in DROP_INS.items():
        for name, drop_in in names.items():
            setattr(module, name, drop_in)


def pytest_collection_modifyitems(config, items):
    drop_ins = {name: drop_in for names in DROP_INS.values() for name, drop_in in names.items()}
    for item in items:
        module = getattr(item, "module", None)
        # A suite that imported scikit-learn's own class (before the rebinding, or from where it
        # is defined) would test it instead of ours: refuse to run.
        for name, drop_in in drop_ins.items():
            found = getattr(module, name, drop_in)
            if found is not drop_in and getattr(found, "__module__", "").startswith("sklearn."):
                raise pytest.UsageError(f"{module.__name__}.{name} is scikit-learn's, not the "
                                        "drop-in")
        suite = module.__name__.rpartition(".")[2] if module is not None else ""
        reason = SKIPPED.get(f"{suite}::{getattr(item, 'originalname', None) or item.name}")
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
