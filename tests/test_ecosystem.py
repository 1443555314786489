"""The estimators among scikit-learn's tools: data frames, metadata routing,
persistence, callbacks and plots, each exercised with the real library."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gdreg import GDLinearRegressor, LossCurveDisplay, SGDLinearRegressor

from .conftest import make_regression_data

pd = pytest.importorskip("pandas")

# Full-batch fits are solved to tol=1e-10 here, so two fits of the same
# problem, or a fit and the closed form, agree to about 1e-8 relative.
TIGHT = 1e-8

ESTIMATORS = [
    GDLinearRegressor(tol=1e-10),
    SGDLinearRegressor(random_state=0),
]


def _ids(estimator):
    return type(estimator).__name__


@pytest.fixture
def frame_data(rng):
    X, y = make_regression_data(rng, n_samples=300, n_features=3)
    return pd.DataFrame(X, columns=["a", "b", "c"]), y


@pytest.fixture
def mixed_data(rng):
    """Two numeric columns in very different units and a string category
    whose levels shift the target."""
    n = 240
    frame = pd.DataFrame(
        {
            "size": rng.uniform(10, 200, n),
            "age": rng.integers(0, 50, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )
    shift = frame["colour"].map({"red": 0.0, "green": 3.0, "blue": -2.0})
    y = 0.05 * frame["size"] - 0.3 * frame["age"] + shift + rng.normal(0, 0.1, n)
    return frame, y.to_numpy()


# --- Data frames ---------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_refit_on_an_array_forgets_the_frame_s_feature_names(estimator, frame_data):
    frame, y = frame_data
    reg = clone(estimator).fit(frame, y)
    X = np.column_stack([frame.to_numpy(), frame.to_numpy()[:, :1]])
    reg.fit(X, y)
    assert not hasattr(reg, "feature_names_in_")
    assert reg.n_features_in_ == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.predict(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_pandas_frame_gives_feature_names_and_same_fit(estimator, frame_data):
    frame, y = frame_data
    from_frame = clone(estimator).fit(frame, y)
    from_array = clone(estimator).fit(frame.to_numpy(), y)

    assert_array_equal(from_frame.feature_names_in_, ["a", "b", "c"])
    assert not hasattr(from_array, "feature_names_in_")
    assert_allclose(from_frame.coef_, from_array.coef_, rtol=0, atol=0)
    assert_allclose(from_frame.predict(frame), from_array.predict(frame.to_numpy()))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_polars_frame_gives_feature_names_and_same_fit(estimator, frame_data):
    pl = pytest.importorskip("polars")
    frame, y = frame_data
    polars_frame = pl.from_pandas(frame)
    from_polars = clone(estimator).fit(polars_frame, y)
    from_array = clone(estimator).fit(frame.to_numpy(), y)

    assert_array_equal(from_polars.feature_names_in_, ["a", "b", "c"])
    assert_allclose(from_polars.coef_, from_array.coef_, rtol=0, atol=0)
    assert_allclose(
        from_polars.predict(polars_frame), from_array.predict(frame.to_numpy())
    )


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_predict_warns_when_feature_names_are_missing(estimator, frame_data):
    frame, y = frame_data
    fitted = clone(estimator).fit(frame, y)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        fitted.predict(frame.to_numpy())

    fitted = clone(estimator).fit(frame.to_numpy(), y)
    with pytest.warns(UserWarning, match="X has feature names, but"):
        fitted.predict(frame)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_predict_rejects_other_feature_names(estimator, frame_data):
    frame, y = frame_data
    fitted = clone(estimator).fit(frame, y)
    with pytest.raises(ValueError, match="^The feature names should match") as info:
        fitted.predict(frame[["a", "c", "b"]])
    assert "must be in the same order" in str(info.value)
    renamed = frame.rename(columns={"c": "d"})
    with pytest.raises(ValueError, match="Feature names unseen at fit time:\n- d"):
        fitted.predict(renamed)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
@pytest.mark.parametrize("sparse_output", [False, True])
def test_column_transformer_on_mixed_types(estimator, mixed_data, sparse_output):
    frame, y = mixed_data
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", ["size", "age"]),
            ("category", OneHotEncoder(sparse_output=sparse_output), ["colour"]),
        ],
        sparse_threshold=1.0 if sparse_output else 0.0,
    )
    if not sparse_output:
        # Dense output can be a data frame, which carries the column names
        # through to the regressor.
        preprocess.set_output(transform="pandas")
    model = make_pipeline(preprocess, clone(estimator)).fit(frame, y)

    assert sp.issparse(preprocess.transform(frame)) == sparse_output
    regressor = model[-1]
    if sparse_output:
        assert not hasattr(regressor, "feature_names_in_")
    else:
        assert_array_equal(
            regressor.feature_names_in_,
            [
                "numeric__size",
                "numeric__age",
                "category__colour_blue",
                "category__colour_green",
                "category__colour_red",
            ],
        )
    # The one-hot columns sum to one, so the coefficients are not unique,
    # but the predictions are: compare them with the closed form. SGD stops
    # on its noise floor, about 1e-4 of the target's variance here.
    reference = make_pipeline(clone(preprocess), LinearRegression()).fit(frame, y)
    atol = 1e-6 if isinstance(regressor, GDLinearRegressor) else 0.05
    assert_allclose(model.predict(frame), reference.predict(frame), atol=atol)
    assert model.score(frame, y) > 0.99


# --- Metadata routing ----------------------------------------------------


def _weights(rng, n):
    return rng.uniform(0.1, 3.0, n)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_pipeline_routes_sample_weight_to_fit(estimator, rng):
    X, y = make_regression_data(rng, noise=1.0)
    w = _weights(rng, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        step = clone(estimator).set_fit_request(sample_weight=True)
        scale = StandardScaler().set_fit_request(sample_weight=False)
        pipe = Pipeline([("scale", scale), ("reg", step)])
        pipe.fit(X, y, sample_weight=w)
        # The scaler declined the weights: only the regressor gets them.
        Z = StandardScaler().fit_transform(X)
        weighted = clone(estimator).fit(Z, y, sample_weight=w)
        unweighted = clone(estimator).fit(Z, y)

    assert_allclose(pipe[-1].coef_, weighted.coef_, rtol=0, atol=0)
    assert np.max(np.abs(pipe[-1].coef_ - unweighted.coef_)) > 1e-3


def test_unrequested_sample_weight_is_an_error(rng):
    X, y = make_regression_data(rng)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(GDLinearRegressor())
        with pytest.raises(ValueError, match="sample_weight"):
            pipe.fit(X, y, sample_weight=np.ones(len(y)))


def test_grid_search_routes_sample_weight_to_fit_and_score(rng):
    X, y = make_regression_data(rng, n_samples=120, noise=1.0)
    w = _weights(rng, len(y))
    alphas = [1e-3, 1e-1]
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = (
            GDLinearRegressor(penalty="l2", tol=1e-10)
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=True)
        )
        search = GridSearchCV(estimator, {"alpha": alphas}, cv=cv)
        search.fit(X, y, sample_weight=w)

    for alpha, score in zip(alphas, search.cv_results_["mean_test_score"]):
        expected = []
        for train, test in cv.split(X):
            fitted = GDLinearRegressor(penalty="l2", alpha=alpha, tol=1e-10).fit(
                X[train], y[train], sample_weight=w[train]
            )
            expected.append(fitted.score(X[test], y[test], sample_weight=w[test]))
        assert_allclose(score, np.mean(expected), rtol=TIGHT)
    refit = GDLinearRegressor(penalty="l2", alpha=search.best_params_["alpha"])
    refit.set_params(tol=1e-10).fit(X, y, sample_weight=w)
    assert_allclose(search.best_estimator_.coef_, refit.coef_, rtol=0, atol=0)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_cross_validate_routes_sample_weight(estimator, rng):
    X, y = make_regression_data(rng, n_samples=150, noise=1.0)
    w = _weights(rng, len(y))
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        requested = clone(estimator).set_fit_request(sample_weight=True)
        result = cross_validate(
            requested.set_score_request(sample_weight=False),
            X,
            y,
            cv=cv,
            params={"sample_weight": w},
            return_estimator=True,
        )
    for fitted, score, (train, test) in zip(
        result["estimator"], result["test_score"], cv.split(X)
    ):
        direct = clone(estimator).fit(X[train], y[train], sample_weight=w[train])
        assert_allclose(fitted.coef_, direct.coef_, rtol=0, atol=0)
        assert_allclose(score, direct.score(X[test], y[test]), rtol=TIGHT)


def test_multioutput_routes_sample_weight_to_partial_fit(rng):
    X, y = make_regression_data(rng, noise=1.0)
    Y = np.column_stack([y, -2 * y])
    w = _weights(rng, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        sgd = SGDLinearRegressor(random_state=0)
        model = MultiOutputRegressor(sgd.set_partial_fit_request(sample_weight=True))
        model.partial_fit(X, Y, sample_weight=w)
    for column, fitted in enumerate(model.estimators_):
        direct = SGDLinearRegressor(random_state=0)
        direct.partial_fit(X, Y[:, column], sample_weight=w)
        unweighted = SGDLinearRegressor(random_state=0).partial_fit(X, Y[:, column])
        assert_allclose(fitted.coef_, direct.coef_, rtol=0, atol=0)
        assert np.max(np.abs(fitted.coef_ - unweighted.coef_)) > 1e-3


# --- Persistence ---------------------------------------------------------


def _fitted(estimator, X, y):
    estimator = clone(estimator).fit(X, y)
    if isinstance(estimator, SGDLinearRegressor):
        estimator.partial_fit(X[:50], y[:50])
    return estimator


def _pickle_round_trip(estimator):
    return pickle.loads(pickle.dumps(estimator))


def _joblib_round_trip(estimator):
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def _assert_same_state(loaded, original):
    """Same public and private fitted state, down to the schedule object."""
    assert set(vars(loaded)) == set(vars(original))
    for name, value in vars(original).items():
        other = vars(loaded)[name]
        if name == "_schedule_":
            assert type(other) is type(value)
            assert vars(other) == vars(value)
        elif name == "_moments":
            assert isinstance(other, tuple)
            for part, other_part in zip(value, other):
                assert_array_equal(other_part, part)
        elif isinstance(value, np.ndarray):
            assert_array_equal(other, value)
            assert other.dtype == value.dtype


@pytest.mark.parametrize("round_trip", [_pickle_round_trip, _joblib_round_trip])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_pickle_and_joblib_round_trips(estimator, round_trip, rng):
    X, y = make_regression_data(rng)
    original = _fitted(estimator, X, y)
    loaded = round_trip(original)

    _assert_same_state(loaded, original)
    assert_array_equal(loaded.predict(X), original.predict(X))
    if isinstance(original, SGDLinearRegressor):
        original.partial_fit(X[50:], y[50:])
        loaded.partial_fit(X[50:], y[50:])
        assert_array_equal(loaded.coef_, original.coef_)
        assert_array_equal(loaded.predict(X), original.predict(X))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_skops_round_trip_with_explicitly_trusted_types(estimator, rng):
    sio = pytest.importorskip("skops.io")
    X, y = make_regression_data(rng)
    original = _fitted(estimator, X, y)
    dumped = sio.dumps(original)

    untrusted = sio.get_untrusted_types(data=dumped)
    assert untrusted, "skops should ask to trust gdreg's own classes"
    assert all(name.startswith("gdreg.") for name in untrusted), untrusted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(dumped)

    loaded = sio.loads(dumped, trusted=untrusted)
    _assert_same_state(loaded, original)
    assert_array_equal(loaded.predict(X), original.predict(X))
    if isinstance(original, SGDLinearRegressor):
        original.partial_fit(X[50:], y[50:])
        loaded.partial_fit(X[50:], y[50:])
        assert_array_equal(loaded.predict(X), original.predict(X))


@pytest.mark.parametrize(
    "params",
    [
        {"learning_rate": "constant"},
        {"learning_rate": "invscaling"},
        {"learning_rate": "adaptive"},
        {"average": True, "early_stopping": True, "momentum": 0.5},
    ],
)
def test_skops_keeps_every_schedule_and_option(params, rng):
    sio = pytest.importorskip("skops.io")
    X, y = make_regression_data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        original = _fitted(
            SGDLinearRegressor(random_state=0, max_iter=20, **params), X, y
        )
    dumped = sio.dumps(original)
    untrusted = sio.get_untrusted_types(data=dumped)
    assert all(name.startswith("gdreg.") for name in untrusted), untrusted
    loaded = sio.loads(dumped, trusted=untrusted)

    _assert_same_state(loaded, original)
    original.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert_array_equal(loaded.coef_, original.coef_)


# --- Callbacks -----------------------------------------------------------

callback = pytest.importorskip("sklearn.callback")


class _Recorder:
    """A callback that records the tasks it hears and can stop a fit."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.ended = []
        self.began = []

    def setup(self, estimator, context):
        self.setup_called = True

    def teardown(self, estimator, context):
        self.teardown_called = True

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.began.append((context.task_name, fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.ended.append((context.task_name, fitted_estimator))
        steps = sum(name != "fit" for name, _ in self.ended)
        return self.stop_after is not None and steps >= self.stop_after


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_callbacks_hear_every_step_with_its_coefficients(estimator, rng):
    X, y = make_regression_data(rng)
    recorder = _Recorder()
    fitted = clone(estimator).set_callbacks(recorder).fit(X, y)

    step = "epoch" if isinstance(fitted, SGDLinearRegressor) else "iteration"
    names = [name for name, _ in recorder.ended]
    assert names == [step] * fitted.n_iter_ + ["fit"]
    assert recorder.setup_called and recorder.teardown_called
    # The copy handed over at the last step predicts like the fitted model.
    last = recorder.ended[-2][1]
    assert last is not fitted
    assert_allclose(last.predict(X), fitted.predict(X), rtol=1e-12)
    # Each step starts where the previous one ended.
    for (_, begun), (_, ended) in zip(recorder.began[2:], recorder.ended[:-2]):
        assert_array_equal(begun.coef_, ended.coef_)
    assert not hasattr(fitted, "_callback_fit_ctx")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_callback_can_stop_the_fit_without_warning(estimator, rng):
    X, y = make_regression_data(rng, scales=np.logspace(-2, 2, 6))
    stopper = _Recorder(stop_after=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stopped = clone(estimator).set_params(tol=0).set_callbacks(stopper).fit(X, y)
    assert stopped.n_iter_ == 2
    assert len(stopped.loss_curve_) == 2


def test_partial_fit_is_one_epoch_for_callbacks(rng):
    X, y = make_regression_data(rng)
    recorder = _Recorder()
    sgd = SGDLinearRegressor(random_state=0).set_callbacks(recorder)
    sgd.partial_fit(X, y)
    sgd.partial_fit(X, y)
    assert [name for name, _ in recorder.ended] == ["epoch", "fit"] * 2


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_scoring_monitor_records_scores_during_fit(estimator, rng):
    X, y = make_regression_data(rng, scales=np.logspace(-2, 2, 6))
    monitor = callback.ScoringMonitor(scoring="r2")
    fitted = clone(estimator).set_callbacks(monitor).fit(X, y)

    log = monitor.get_logs().data
    steps = [row for row in log if row["task_name"] != "fit"]
    assert len(steps) == fitted.n_iter_
    scores = [row["r2"] for row in steps]
    assert_allclose(scores[-1], fitted.score(X, y), rtol=1e-12)
    assert scores[0] < scores[-1]


def test_failed_fit_still_tears_callbacks_down(rng):
    X, y = make_regression_data(rng)
    recorder = _Recorder()
    gd = GDLinearRegressor(learning_rate=100.0).set_callbacks(recorder)
    with pytest.raises(ValueError, match="too large"):
        gd.fit(X, y)
    assert recorder.teardown_called
    assert not hasattr(gd, "coef_")
    assert not hasattr(gd, "_callback_fit_ctx")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_progress_bar_over_fit_and_grid_search(estimator, rng, capsys):
    pytest.importorskip("rich")
    X, y = make_regression_data(rng)
    clone(estimator).set_callbacks(callback.ProgressBar()).fit(X, y)
    shown = capsys.readouterr().out
    assert f"{type(estimator).__name__} - fit" in shown

    search = GridSearchCV(clone(estimator), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    shown = capsys.readouterr().out
    assert "GridSearchCV - fit" in shown
    assert f"{type(estimator).__name__} - fit" in shown


def test_grid_search_propagates_callbacks_to_each_fit(rng):
    X, y = make_regression_data(rng)
    monitor = callback.ScoringMonitor(scoring="r2")
    search = GridSearchCV(GDLinearRegressor(), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.estimator.set_callbacks(monitor)
    search.fit(X, y)
    log = monitor.get_logs().data
    # Two candidates on two folds, then the refit: five fits of the regressor.
    assert sum(row["task_name"] == "fit" for row in log) == 5


# --- Plots ---------------------------------------------------------------


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_loss_curve_display_from_estimator(estimator, rng, pyplot):
    X, y = make_regression_data(rng)
    fitted = clone(estimator).fit(X, y)
    display = LossCurveDisplay.from_estimator(fitted)

    assert_allclose(display.line_.get_ydata(), fitted.loss_curve_)
    assert_array_equal(display.line_.get_xdata(), np.arange(1, fitted.n_iter_ + 1))
    assert display.figure_ is display.ax_.figure
    assert display.validation_line_ is None and display.validation_ax_ is None
    step = "epoch" if isinstance(fitted, SGDLinearRegressor) else "iteration"
    assert display.ax_.get_xlabel() == step
    assert type(fitted).__name__ in display.ax_.get_legend().texts[0].get_text()


def test_loss_curve_display_with_validation_scores_on_given_axes(rng, pyplot):
    X, y = make_regression_data(rng, n_samples=400)
    sgd = SGDLinearRegressor(early_stopping=True, random_state=0).fit(X, y)
    _, ax = pyplot.subplots()
    display = LossCurveDisplay.from_estimator(sgd, ax=ax, name="sgd", log_scale=True)

    assert display.ax_ is ax
    assert ax.get_yscale() == "log"
    assert_allclose(display.validation_line_.get_ydata(), sgd.validation_scores_)
    assert display.validation_ax_ is not ax
    assert display.validation_ax_.get_ylabel() == "validation R^2"
    assert [t.get_text() for t in ax.get_legend().texts] == [
        "sgd (loss)",
        "sgd (validation R^2)",
    ]


def test_loss_curve_display_plot_redraws_on_other_axes(rng, pyplot):
    display = LossCurveDisplay(loss_curve=[3.0, 2.0, 1.5], step_name="epoch")
    _, (left, right) = pyplot.subplots(1, 2)
    display.plot(ax=left)
    display.plot(ax=right)
    assert display.ax_ is right
    assert_array_equal(left.lines[0].get_ydata(), right.lines[0].get_ydata())


def test_loss_curve_display_needs_a_fitted_estimator():
    with pytest.raises(sklearn.exceptions.NotFittedError):
        LossCurveDisplay.from_estimator(GDLinearRegressor())


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_monitoring_a_frame_fit_gives_no_feature_name_warnings(estimator, frame_data):
    frame, y = frame_data
    monitor = callback.ScoringMonitor(scoring="r2")
    estimator = clone(estimator).set_callbacks(monitor)
    if isinstance(estimator, SGDLinearRegressor):
        estimator.set_params(early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        estimator.fit(frame, y)
    assert len(monitor.get_logs().data) == estimator.n_iter_ + 1
