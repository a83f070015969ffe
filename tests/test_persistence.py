"""save / load: a file that ``torch.load(weights_only=True)`` reads, and an estimator rebuilt from
it that behaves as the saved one. The references are the original estimator (predictions, fitted
attributes, continued training) and its pickle round trip (the trainer's complete state)."""

import dataclasses
import io
import pickle
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_same_training
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, MLPRegressor, load, save
from sknn_tune._engine import OPTIMIZERS, MemberData
from sknn_tune._persistence import FORMAT, VERSION
from sknn_tune._plain import TAG

_X, _y = make_classification(n_samples=120, n_features=5, n_informative=4, n_redundant=0,
                             n_classes=3, n_clusters_per_class=1, random_state=0)
_X = StandardScaler().fit_transform(_X)
_LABELS = np.array(["cat", "dog", "emu"], dtype=object)[_y]
_XR, _YR = make_regression(n_samples=100, n_features=4, n_targets=2, noise=0.1, random_state=0)
_YR = _YR / _YR.std()

CASES = {
    # string labels (an object array), feature names, a torch.device, a class_weight dict, early
    # stopping on a named scorer, batch norm and dropout
    "classifier": (
        MLPClassifier((8, 4), batch_norm=True, dropout=0.2, early_stopping=True, patience=2,
                      scoring="accuracy", class_weight={"cat": 2.0, "dog": 1.0, "emu": 0.5},
                      device=torch.device("cpu"), lr=1e-2, batch_size=16, max_epochs=6,
                      random_state=0),
        pd.DataFrame(_X, columns=[f"f{i}" for i in range(5)]), pd.Series(_LABELS)),
    # bool labels, float32, a schedule with state of its own, noise and penalties
    "classifier-float32": (
        MLPClassifier((8,), optimizer="rmsprop", lr_schedule="plateau", lr_step=1, noise_std=0.1,
                      l1=1e-4, weight_decay=1e-3, batch_size=32, max_epochs=4, random_state=1),
        _X.astype(np.float32), _y == 1),
    "regressor": (
        MLPRegressor((8,), loss="huber", optimizer="nesterov", lr=1e-2, lr_schedule="step",
                     lr_step=2, batch_size=32, max_epochs=5, random_state=0),
        _XR, _YR),
}


def round_trip(estimator, **load_params):
    file = io.BytesIO()
    save(estimator, file)
    file.seek(0)
    return load(file, **load_params)


def assert_same(a, b, where="value", training=False):
    """``a`` and ``b`` are equal in type, dtype, device and every bit (NaN equals NaN).

    With ``training``, their floating-point values only as two trainings of the same model are
    (``assert_same_training``): bit for bit on the CPU, within the design's tolerance on a GPU.
    """
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.device, a.shape) == (b.dtype, b.device, b.shape), where
        if training and a.is_floating_point():
            assert_same_training(a, b, err_msg=where)
        else:
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        if training and np.issubdtype(a.dtype, np.floating):
            assert_same_training(a, b, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, pd.DataFrame):
        if training:
            assert list(a.columns) == list(b.columns) and a.index.equals(b.index), where
            for column in a.columns:
                assert_same(a[column].to_numpy(), b[column].to_numpy(), f"{where}[{column!r}]",
                            training)
        else:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]", training)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]", training)
    elif dataclasses.is_dataclass(a):
        assert_same(vars(a), vars(b), where, training)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items()
            if name.endswith("_") and name != "model_"}


def predictions(estimator, X):
    out = [estimator.predict(X)]
    if hasattr(estimator, "predict_proba"):
        out.append(estimator.predict_proba(X))
    return out


def plain_leaves(value):
    """Every leaf of ``value``, after checking that its containers are lists, tuples, dicts."""
    if type(value) in (list, tuple):
        return [leaf for item in value for leaf in plain_leaves(item)]
    if type(value) is dict:
        return [leaf for pair in value.items() for item in pair for leaf in plain_leaves(item)]
    return [value]


# ---------------------------------------------------------------------------------------------
# the file


def test_file_holds_only_tensors_and_plain_values(tmp_path):
    estimator, X, y = CASES["classifier"]
    estimator = estimator.fit(X, y)
    path = tmp_path / "model.pt"
    save(estimator, path)
    content = torch.load(path, weights_only=True)
    assert (content["format"], content["version"], content["estimator"]) == (
        FORMAT, VERSION, "MLPClassifier")
    leaves = plain_leaves(content)
    assert {type(leaf) for leaf in leaves} <= {torch.Tensor, str, int, float, bool, type(None)}
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    assert {t.device.type for t in tensors} == {"cpu"}
    # The weights are in the file, and nothing more than them in a tensor's storage.
    params = content["model"]["params"]
    assert_same(params, estimator.model_.params)
    assert params.untyped_storage().nbytes() == params.nbytes
    assert content["params"]["hidden_layer_sizes"] == (8, 4)  # a tuple stays a tuple
    assert content["attributes"]["classes_"]["items"] == ["cat", "dog", "emu"]


@pytest.mark.parametrize("case", CASES)
def test_loaded_estimator_is_the_saved_one(case, tmp_path):
    estimator, X, y = CASES[case]
    estimator = estimator.fit(X, y)
    path = tmp_path / "model.pt"
    save(estimator, str(path))
    loaded = load(path)
    pickled = pickle.loads(pickle.dumps(estimator))
    assert type(loaded) is type(estimator)
    assert_same(loaded.get_params(), estimator.get_params())
    assert_same(fitted_attributes(loaded), fitted_attributes(estimator))
    # load puts the model on the CPU: the same weights, computed there. Bit for bit when the
    # estimator trained on the CPU; trained on a GPU (device='auto' in a --device cuda run), to
    # float32 rounding on the CPU and bit for bit loaded back onto its device.
    trained_on = estimator.model_.config.device
    assert_same(predictions(loaded, X), predictions(estimator, X), training=trained_on.type != "cpu")
    if trained_on.type != "cpu":
        assert_same(predictions(load(path, device=trained_on), X), predictions(estimator, X))
    # The whole trainer (weights, optimizer and early-stopping state, log), as pickle keeps it.
    assert_same(vars(loaded.model_), vars(pickled.model_))
    assert loaded.summary() == estimator.summary()
    for name in ("coefs_", "intercepts_"):
        assert_same(getattr(loaded, name), getattr(estimator, name))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_loaded_estimator_continues_training_identically(optimizer, how):
    original = MLPClassifier((8,), optimizer=optimizer, lr=1e-2, batch_size=32, max_epochs=3,
                             random_state=0).fit(_X, _LABELS)
    loaded = round_trip(original)
    for estimator in (original, loaded):
        if how == "partial_fit":
            estimator.partial_fit(_X, _LABELS).partial_fit(_X, _LABELS)
        else:
            estimator.set_params(warm_start=True).fit(_X, _LABELS)
    assert loaded.n_iter_ == original.n_iter_ == (1 if how == "partial_fit" else 3)  # last call
    assert len(loaded.history_) == len(original.history_) == (5 if how == "partial_fit" else 6)
    # Two continued trainings (the loaded model continues where device='auto' resolves, as the
    # original does): bit for bit on the CPU, within the design's tolerance on a GPU.
    assert_same(predictions(loaded, _X), predictions(original, _X), training=True)
    for name in ("params", "state", "steps", "buffers", "epochs_done"):
        assert_same(getattr(loaded.model_, name), getattr(original.model_, name), name, training=True)
    # The same epochs; the ones trained after the round trip have their own timings.
    assert_same(loaded.history_.drop(columns="seconds"), original.history_.drop(columns="seconds"),
                training=True)
    assert_same(loaded.history_.iloc[:3], original.history_.iloc[:3])


def test_attributes_the_trainer_gains_are_saved():
    # The trainer's own state is saved generically: an attribute added to the engine later
    # (arrays, tensors, engine dataclasses, containers of them) needs no change to save / load.
    estimator, X, y = CASES["regressor"]
    estimator = estimator.fit(X, y)
    trainer = estimator.model_
    trainer.new_counts = np.arange(3, dtype=np.int32)
    trainer.new_tensor = torch.ones(2, 3, dtype=torch.float16)
    trainer.new_data = [MemberData(np.arange(4), None, np.array([5, 6]), np.ones(2))]
    trainer.new_names = np.array(["a", "bc"])
    loaded = round_trip(estimator)
    assert_same(vars(loaded.model_), vars(pickle.loads(pickle.dumps(estimator)).model_))
    assert loaded.model_.new_names.dtype == np.dtype("<U2")


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="with CUDA, partial_fit continues where device='cuda' resolves: the GPU")
def test_model_for_a_gpu_loads_on_the_cpu():
    # A model whose device parameter names a GPU (fitted on a GPU machine) predicts and continues
    # on the CPU of a machine where load puts it.
    estimator, X, y = CASES["classifier"]
    estimator = estimator.fit(X, y).set_params(device="cuda")
    loaded = round_trip(estimator, device="cpu")
    assert loaded.device == "cuda"
    assert loaded.model_.config.device == torch.device("cpu")
    assert loaded.model_.params.device == torch.device("cpu")
    assert_same(predictions(loaded, X), predictions(estimator, X))
    loaded.set_params(early_stopping=False).partial_fit(X, y)
    estimator.set_params(early_stopping=False).partial_fit(X, y)
    assert_same(predictions(loaded, X), predictions(estimator, X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_loads_on_cpu_and_on_cuda():
    estimator, X, y = CASES["classifier"]
    estimator = estimator.set_params(device="cuda").fit(X, y)
    assert estimator.model_.params.device.type == "cuda"
    file = io.BytesIO()
    save(estimator, file)
    file.seek(0)
    tensors = [leaf for leaf in plain_leaves(torch.load(file, weights_only=True))
               if isinstance(leaf, torch.Tensor)]
    assert {t.device.type for t in tensors} == {"cpu"}
    file.seek(0)
    on_cpu = load(file)
    assert on_cpu.model_.params.device.type == on_cpu.model_.config.device.type == "cpu"
    np.testing.assert_allclose(on_cpu.predict_proba(X), estimator.predict_proba(X), atol=1e-5)
    file.seek(0)
    on_cuda = load(file, device="cuda")
    assert on_cuda.model_.config.device.type == "cuda"
    assert_same(predictions(on_cuda, X), predictions(estimator, X))
    on_cuda.partial_fit(X, y)
    estimator.partial_fit(X, y)
    np.testing.assert_allclose(on_cuda.predict_proba(X), estimator.predict_proba(X), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# what save and load refuse


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_save_refuses_unfitted_and_other_objects():
    with pytest.raises(NotFittedError, match="MLPClassifier instance is not fitted"):
        save(MLPClassifier(), io.BytesIO())

    class MyClassifier(MLPClassifier):
        pass

    fitted_other = SkMLPClassifier((4,), max_iter=5).fit(_X, _y)
    for other in (make_pipeline(StandardScaler(), MLPClassifier()), fitted_other,
                  MyClassifier(max_epochs=1).fit(_X, _y), {"model": 1}):
        with pytest.raises(TypeError, match="takes a fitted MLPClassifier or MLPRegressor; "
                                            f"got {type(other).__name__}"):
            save(other, io.BytesIO())


@pytest.mark.parametrize("param, value", [
    ("random_state", np.random.RandomState(0)),
    ("scoring", lambda estimator, X, y: 0.0),
    ("class_weight", {0: object()}),
])
def test_save_names_a_parameter_that_is_not_plain_data(param, value):
    estimator = MLPClassifier((4,), max_epochs=2, random_state=0, early_stopping=True)
    estimator.fit(_X, _y).set_params(**{param: value})
    file = io.BytesIO()
    with pytest.raises(ValueError, match=f"its parameter {param}=.* is not plain data") as error:
        save(estimator, file)
    assert "set_params" in str(error.value) and "joblib" in str(error.value)
    assert file.getvalue() == b""  # nothing written


def saved_content():
    file = io.BytesIO()
    save(MLPRegressor((4,), max_epochs=2, random_state=0).fit(_XR, _YR), file)
    file.seek(0)
    return torch.load(file, weights_only=True)


def written(obj):
    file = io.BytesIO()
    torch.save(obj, file)
    file.seek(0)
    return file


def test_load_refuses_files_that_save_did_not_write(tmp_path):
    estimator = MLPClassifier((4,), max_epochs=2, random_state=0).fit(_X, _y)
    pickled, dumped, text = tmp_path / "model.pkl", tmp_path / "model.joblib", tmp_path / "a.txt"
    pickled.write_bytes(pickle.dumps(estimator))
    joblib.dump(estimator, dumped)
    text.write_text("hello")
    for path in (pickled, dumped, text):
        with pytest.raises(ValueError, match=r"is not a file written by sknn_tune\.save: "
                                             r"torch.load\(weights_only=True\) cannot read it"):
            load(path)
    for content in ({"weights": torch.ones(2)}, [1, 2], {**saved_content(), "format": "other"}):
        with pytest.raises(ValueError, match=r"not a file written by sknn_tune\.save: it has no "
                                             r"'format': 'sknn_tune\.save' entry"):
            load(written(content))


@pytest.mark.parametrize("version", [VERSION + 1, 0, "1", None])
def test_load_refuses_other_format_versions(version):
    with pytest.raises(ValueError, match=f"version {version!r} of sknn_tune's format .* reads "
                                         f"versions 1 to {VERSION}. Upgrade"):
        load(written({**saved_content(), "version": version}))


def test_load_builds_no_class_a_file_names():
    # A file may name only sknn_tune's classes: nothing else is imported or called.
    content = saved_content()
    with pytest.raises(ValueError, match="holds a 'Pipeline'"):
        load(written({**content, "estimator": "Pipeline"}))
    for name in ("subprocess:Popen", "sknn_tune._engine.trainer:StackedTrainer",
                 "sknn_tune.classifier:np", "sknn_tune.__main__:main"):
        model = {**content["model"], "config": {TAG: "dataclass", "class": name,
                                                "fields": {"args": "touch pwned"}}}
        with pytest.raises(ValueError, match=r"is not a (data)?class of sknn_tune"):
            load(written({**content, "model": model}))
    assert "sknn_tune.__main__" not in sys.modules  # not even imported
    with pytest.raises(ValueError, match="unknown encoded type 'pickle'"):
        load(written({**content, "params": {TAG: "pickle", "data": "..."}}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_on_cuda_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        load(written(saved_content()), device="cuda")


def test_trainer_state_of_the_old_layout_loads_with_a_divergence_column():
    # Files and pickles written before the log had a 'diverged' column: the column is rebuilt
    # from the members' diverged flags (a diverged member diverged in the last epoch it trained).
    from sknn_tune._engine import StackedTrainer

    estimator, X, y = CASES["regressor"]
    trainer = estimator.fit(X, y).model_
    state = trainer.__getstate__()
    old = {**state, "log": [{k: v for k, v in entry.items() if k != "diverged"}
                            for entry in state["log"]],
           "diverged": np.ones_like(state["diverged"])}
    restored = object.__new__(StackedTrainer)
    restored.__setstate__(old)
    flags = restored.history(0)["diverged"]
    assert flags.tolist() == [False] * (len(flags) - 1) + [True]
    torch.testing.assert_close(restored.params, trainer.params, rtol=0, atol=0)
