"""Stochastic and mini-batch gradient descent: ``SGDLinearRegressor``."""

import warnings
from contextlib import nullcontext
from functools import cache
from math import ceil

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.extmath import safe_sparse_dot

from ._base import BaseGDRegressor, FitHooks
from ._kernels import (
    _DENSE_BLOCKS_MAX_FEATURES,
    SGDPasses,
    internal_rows,
    row_norms_sq,
)
from ._objective import soft_threshold
from ._scaling import (
    _row_chunks,
    internal_coordinates,
    merge_moments,
    penalised_whitening,
    weighted_moments,
    whitening_rotation,
)
from ._schedules import (
    AdaptiveSchedule,
    AutoSchedule,
    ConstantSchedule,
    InverseScalingSchedule,
)
from ._validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    array_namespace,
    check_finite_result,
    is_numpy_data,
    is_numpy_namespace,
    to_numpy,
    widest_float,
)

# Largest float64 copy of the training rows in internal coordinates that a
# fit keeps for its passes.
_INTERNAL_ROWS_MAX_BYTES = 1 << 30

# Most features for which a fit forms and factors the (d + 1, d + 1) Hessian
# of the objective, to certify its distance to the minimum.
_CERTIFICATE_MAX_FEATURES = 500


class SGDLinearRegressor(BaseGDRegressor):
    """Linear regression fitted by stochastic or mini-batch gradient descent.

    Minimises the same objective as :class:`GDLinearRegressor`, the mean
    squared error with the one-half factor plus an optional penalty, but each
    update uses the gradient of one sample (``batch_size=1``, the textbook
    method) or of a mini-batch. One epoch is one pass over the data. Features
    may be given in any units: they are centred and scaled internally, and
    ``coef_`` is in the units of ``X``.

    Parameters
    ----------
    penalty : {'l2', 'l1', 'elasticnet'} or None, default=None
        The penalty on the coefficients (never on the intercept).

    alpha : float, default=1e-4
        Strength of the penalty; ignored when ``penalty`` is None.

    l1_ratio : float, default=0.15
        Share of L1 in the elastic-net penalty.

    fit_intercept : bool, default=True
        Whether to fit an intercept.

    batch_size : int or 'auto', default='auto'
        Samples per update. 1 gives the textbook per-sample method. 'auto'
        uses 32, and in ``fit`` fewer on small data (``n_samples // 256``,
        at least 1): an epoch of many small steps gets closer to the minimum
        than one of a few large ones, which on data sets of a few thousand
        rows saves epochs, each of which costs Python calls.

    learning_rate : {'auto', 'constant', 'invscaling', 'adaptive'}, \
            default='auto'
        The step schedule. 'auto' starts at the largest step that cannot
        diverge on this data (see Notes). Where ``fit`` can compute the
        exact distance of the objective to its minimum (see Notes), it
        stops at the first epoch whose objective is within ``tol`` of the
        minimum (relative), cuts the step when an epoch shrank that
        distance by less than the step's own contraction explains, and from
        the second epoch on continues from the better of the last iterate
        and the mean iterate of the epoch; it also stops after
        ``n_iter_no_change`` epochs in a row that improve the objective by
        less than ``tol``. Elsewhere it judges progress once per round of
        epochs holding at least 128 updates: it halves the step when the
        objective rose, keeps it while the objective falls, and stops when a
        round fails to improve by ``tol`` once the step's noise floor,
        ``eta * (number of coordinates) / (2 * batch_size)``, is below
        ``tol / 10``, or after ``n_iter_no_change`` such rounds in a row.
        In ``partial_fit`` it halves the step whenever a pass leaves its own
        rows fitted worse than before. 'constant' uses ``eta0``;
        'invscaling' uses ``eta0 / (t + 1) ** power_t`` at update ``t``;
        'adaptive' keeps ``eta0`` and divides it by 5 after
        ``n_iter_no_change`` epochs without improvement.

    eta0 : float, default=0.01
        Initial step for 'constant', 'invscaling' and 'adaptive'. Steps are
        taken in the scaled coordinates of the Notes, where a value near the
        'auto' step is sensible whatever the units of ``X``.

    power_t : float, default=0.25
        Exponent of 'invscaling'.

    momentum : float, default=0.0
        Heavy-ball momentum in ``[0, 1)``: each update adds ``momentum``
        times the previous one. Updates with momentum run one mini-batch at a
        time, which is much slower with small batches.

    average : bool, default=False
        Whether ``coef_`` and ``intercept_`` are the average of all iterates
        (Polyak-Ruppert averaging) instead of the last one.

    shuffle : bool, default=True
        Whether to visit the samples in a new random order each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the validation split; an int gives
        bit-for-bit reproducible fits.

    max_iter : int, default=1000
        Largest number of epochs in ``fit``.

    tol : float, default=3e-4
        With 'auto', ``fit`` stops once the objective ``f`` is certified to
        exceed its minimum by at most ``tol * f`` (where that can be
        computed, see Notes). On the benchmark's ten data sets (5 splits, 3
        seeds each) the default kept the test R^2, averaged over a data
        set, at most 3.2e-4 below that of scikit-learn's
        ``LinearRegression``, and averaged over the seeds of one split at
        most 9.3e-4 below; 1e-3 saved 0.9 epochs on average but let the
        latter fall 1.7e-3 below. An epoch improves when its objective is
        below ``(1 - tol)`` times the reference: the best so far, or for
        'auto' the previous judged epoch (for early stopping: when the
        validation score rises by more than ``tol``).

    n_iter_no_change : int, default=5
        Epochs without improvement in a row before stopping; with
        'adaptive', before dividing the step by 5. With 'auto' it counts
        judged rounds of epochs (see ``learning_rate``).

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data and
        stop when the R^2 score on it stops improving.

    validation_fraction : float, default=0.1
        Share of the training data held out with early stopping.

    warm_start : bool, default=False
        Whether ``fit`` starts from the previous coefficients.

    verbose : int, default=0
        If positive, print one line per epoch.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients, in the units of ``X``.

    intercept_ : float or ndarray of shape (n_targets,)
        The intercept.

    n_iter_ : int
        Epochs run by the last ``fit`` (1 after each ``partial_fit``).

    t_ : int
        Updates made since the estimator was created or reset by ``fit``.

    loss_curve_ : list of float
        The objective of ``coef_`` and ``intercept_`` at the end of each
        epoch (penalty included; summed over targets). Computing it costs
        one product with ``X`` (or with the internal copy of the rows, see
        Notes) per epoch.

    validation_scores_ : list of float
        R^2 on the held-out data after each epoch; only with early stopping.

    best_validation_score_ : float
        The best of ``validation_scores_``; only with early stopping.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    GDLinearRegressor : The same model by full-batch gradient descent.
    sklearn.linear_model.SGDRegressor : scikit-learn's stochastic solver.

    Notes
    -----
    With weights :math:`s_i` (divided by their mean) and mini-batch
    :math:`B` of :math:`m` samples, an update in the scaled coordinates
    :math:`z_i` (see :class:`GDLinearRegressor`) is

    .. math::

        r_i = z_i \\cdot v + b - y_i, \\quad
        v \\leftarrow v - \\eta \\left(\\frac{1}{m} \\sum_{i \\in B} s_i r_i
        z_i + \\lambda_2 v\\right), \\quad
        b \\leftarrow b - \\frac{\\eta}{m} \\sum_{i \\in B} s_i r_i

    With ``batch_size=1`` this is exactly the textbook per-sample update.
    Consecutive updates are computed together, in blocks, by solving one
    triangular linear system per block: the result equals a plain loop over
    the samples up to rounding, at the speed of matrix products. The
    intercept starts at the mean target.

    An integer weight is equivalent to repeating the sample that many times
    in the objective, so both fits end within ``tol`` of the same minimum;
    but their stochastic paths differ, and with a penalty, whose minimum
    the samples' own gradients do not vanish at, they stop apart by the
    noise that ``tol`` allows (about ``3e-4`` in the predictions of
    scikit-learn's sample-weight equivalence check, which asks for
    ``1e-7``). Without a penalty, on data a linear model fits exactly (as in
    that check), every sample's gradient vanishes at the minimum and the
    two fits agree.

    The 'auto' step is one over the mean of the ``batch_size`` largest
    values of :math:`s_i (\\lVert z_i \\rVert^2 + k)` (:math:`k` is 1 with
    an intercept, 0 without; :math:`z_i` are the internal rows, whitened
    when whitening is on) plus the largest internal L2 strength, and at most
    ``0.5 / l2``. It bounds the largest eigenvalue of every mini-batch's
    update matrix, so every update is a contraction and no sequence of
    samples can make the iterates diverge.

    The L1 part of a penalty is applied by soft-thresholding after each
    block of updates (a proximal step for the block's summed step sizes),
    so with L1 the iterates are not those of per-sample proximal SGD.

    Without a penalty, ``fit`` also whitens features (dense, or sparse
    with at most 500 columns, densified a chunk of rows at a time) whose
    scaled covariance is poorly conditioned (condition number above 10, at most
    500 features): the internal rows are multiplied by the inverse square
    root of that covariance, so correlated or nearly collinear features do
    not slow the descent down. With an L2 penalty (and no L1 part) the
    same holds for the penalised problem: ``fit`` rotates to coordinates in
    which its Hessian is the identity and the penalty stays one L2
    strength per coordinate, so directions that only the penalty curves
    (more features than samples, collinear features) are reached as fast as
    the others. An L1 part is not invariant under rotations, so with one
    only the diagonal scaling is used, and such directions are approached
    at a rate of about ``eta * alpha`` per update: there
    :class:`GDLinearRegressor` is far faster.
    An L2 penalty has a different strength for each feature in the scaled
    coordinates; the blocks carry the per-feature decay products, so the
    iterates are still those of the plain loop (sparse data with more than
    1000 features excepted, which run one mini-batch at a time). Updates
    with momentum also run one mini-batch at a time, which is exact but
    slower with small batches.

    ``fit`` keeps the training rows in the internal coordinates, with a
    column of ones and the targets, as one float64 array when it needs at
    most 1 GiB (for sparse data, at most four times the size of ``X``) and
    makes its passes over that copy; larger data are put in the internal
    coordinates a chunk of rows at a time in every pass.

    On NumPy data of at most ``2**22`` values whose products BLAS would
    spread over threads, ``fit`` and ``partial_fit`` run BLAS on one thread
    (through threadpoolctl, which scikit-learn installs). Such a fit spends
    little of its time in large products, and waking BLAS threads can cost
    more than the products: on two cores, just after a scikit-learn
    ``LinearRegression`` fit, it doubled the time of a fit on 13,903 rows.
    The limit applies to the whole process while the fit runs.

    Without an L1 part the objective is quadratic, with Hessian :math:`H`
    in the internal coordinates; at coefficients with gradient :math:`g` it
    exceeds its minimum by exactly :math:`g^T H^{+} g / 2`. When ``fit``
    keeps the internal copy of the rows, it forms :math:`H` once and
    evaluates this excess after every epoch with the objective (two
    products with the rows in all), and with 'auto' stops at the first
    epoch where the excess is at most ``tol`` times the objective (or at
    most ``tol * 1e-16`` times the objective of the best constant, for
    data that a linear model fits exactly). The excess also steers the
    step: an epoch of ``k`` updates of size ``eta`` shrinks the error
    along the slowest direction (curvature ``c``) by about ``exp(-eta k
    c)``, so an excess that falls by less than that is held up by the
    noise of the stochastic steps, and the step is cut, at most once per
    halving of the excess that the step's contraction allows. The noise
    falls about as the square of the step, so the cut is the square root
    of the ratio of half of ``tol`` times the objective to the excess (it
    aims below the target, which noise only just reaching it would leave
    to chance), kept between a fifth and a half, and the next epoch's
    steps glide geometrically
    from the old step to the new one. The first epoch is judged against
    the excess of the starting point. From the
    second epoch on each pass also sums its iterates, and the next epoch
    starts from their mean when its excess is lower: averaging cancels much
    of the noise that holds the last iterate up (the first epoch, which
    starts far from the minimum, is not averaged). The iterates within an
    epoch remain those of plain SGD. With ``average=True`` the excess of
    the average stops the fit, and the rules on the objective's progress
    steer the step. Elsewhere (an L1 part, ``partial_fit``, data beyond
    the copy's budget, more than 500 features, other array libraries, early
    stopping) those rules steer and stop the fit.

    ``partial_fit`` scales with the running mean and variance of all data
    seen so far, so a first call on very few rows is scaled poorly until
    more arrive; coefficients are kept in the units of ``X`` between calls.

    Under scikit-learn's ``array_api_dispatch``, dense arrays of other
    libraries (PyTorch, array-api-strict, ...) stay in their library and on
    their device: the feature statistics, the updates, the objective and the
    predictions are computed there, and ``coef_`` and ``intercept_`` are
    arrays of that library and device. Such data always run one mini-batch
    at a time, gathering each mini-batch's rows with ``take``, in the
    library's widest floating type; the blocked kernels and the whitening
    are written for NumPy and BLAS, so they are used for NumPy data only
    (without whitening, correlated features slow the descent down as they do
    with a penalty). The shuffling is drawn in NumPy by the estimator's
    random state and moved to the device, so a fit matches the NumPy fit
    that runs the same updates (with momentum, for example) up to rounding.
    The per-feature vectors of the internal coordinates are formed in NumPy
    once per fit, and the coefficients cross between host and device once
    per epoch: a cost proportional to the number of features, small next to
    an epoch's.

    Examples
    --------
    >>> import numpy as np
    >>> from gdreg import SGDLinearRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3)) * [1.0, 100.0, 0.01]
    >>> y = X @ np.array([1.0, 0.02, 300.0]) + 5.0
    >>> reg = SGDLinearRegressor(random_state=0).fit(X, y)
    >>> reg.coef_.round(3).tolist()
    [1.0, 0.02, 300.0]
    """

    _array_api = True

    _parameter_constraints: dict = {
        **BaseGDRegressor._parameter_constraints,
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"auto", "constant", "invscaling", "adaptive"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "average": ["boolean"],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        *,
        penalty=None,
        alpha=1e-4,
        l1_ratio=0.15,
        fit_intercept=True,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        momentum=0.0,
        average=False,
        shuffle=True,
        random_state=None,
        max_iter=1000,
        tol=3e-4,
        n_iter_no_change=5,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        verbose=0,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.momentum = momentum
        self.average = average
        self.shuffle = shuffle
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None):
        """Fit the model by stochastic gradient descent, over several epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each sample's update is scaled by its
            weight (divided by the mean weight), and the objective weighs it.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._all_or_nothing():
            self._check_parameters()
            warm = self.warm_start and hasattr(self, "coef_")
            hooks = self._hooks(X, y, sample_weight, self.max_iter)
            X, y, sample_weight = self._validate_fit_data(
                X, y, sample_weight, reset=not warm
            )
            with _one_blas_thread(X):
                rng = _random_state(self.random_state)
                train, validation = self._split(X.shape[0], rng)
                X_train, y_train, w_train = _take(X, y, sample_weight, train)
                self._moments = _moments_of(X_train, w_train)
                if not warm:
                    self._reset(y_train, w_train)
                self.t_ = 0 if not warm else self.t_
                self._run(X_train, y_train, w_train, rng, self.max_iter, validation,
                          X, y, hooks=hooks)  # fmt: skip
            hooks.end()
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """Make one pass over the given samples, continuing any earlier fit.

        The step schedule carries on from the previous calls; feature scaling
        uses the statistics of every sample seen so far.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data, with the features of earlier calls and
            of the same array library and device.

        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        with self._all_or_nothing():
            self._check_parameters()
            first = not hasattr(self, "coef_")
            hooks = self._hooks(X, y, sample_weight, 1)
            X, y, sample_weight = self._validate_fit_data(
                X, y, sample_weight, reset=first
            )
            with _one_blas_thread(X):
                moments = _moments_of(X, sample_weight)
                if first:
                    self._moments = moments
                    self._reset(y, sample_weight)
                    self.t_ = 0
                else:
                    self._check_targets(y)
                    self._check_library(X)
                    self._moments = merge_moments(self._moments, moments)
                rng = _partial_fit_rng(self.random_state, self.t_)
                self._run(X, y, sample_weight, rng, 1, None, None, None, partial=True,
                          hooks=hooks)  # fmt: skip
            hooks.end()
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    def _hooks(self, X, y, sample_weight, max_epochs):
        """The callbacks' hooks for a fit of up to ``max_epochs`` epochs."""
        hooks = FitHooks(self, X, y, sample_weight, max_epochs, "epoch")
        if hasattr(self, "coef_"):
            hooks.begin({"coef_": self.coef_, "intercept_": self.intercept_})
        else:
            hooks.begin()
        return hooks

    def _batch_for(self, n_samples):
        """The mini-batch size: the parameter, or for 'auto' 32 samples, fewer
        when ``fit`` gets small data so that an epoch holds about 256
        updates or more; ``n_samples`` is None for ``partial_fit``."""
        if self.batch_size != "auto":
            return self.batch_size
        if n_samples is None:
            return 32
        return int(min(32, max(1, n_samples // 256)))

    def _split(self, n_samples, rng):
        """Training and validation row indices (all rows for training if no
        early stopping)."""
        if not self.early_stopping:
            return None, None
        n_validation = int(ceil(self.validation_fraction * n_samples))
        if n_validation >= n_samples:
            raise ValueError(
                f"early_stopping=True with validation_fraction="
                f"{self.validation_fraction} leaves no training sample out of "
                f"{n_samples}; lower validation_fraction or pass more samples."
            )
        permutation = rng.permutation(n_samples)
        return np.sort(permutation[n_validation:]), np.sort(permutation[:n_validation])

    def _reset(self, y, sample_weight):
        """Start from zero coefficients and the mean target as intercept."""
        n_features = self.n_features_in_
        xp, _ = array_namespace(y)
        dtype = _host_dtype(y)
        coef = np.zeros(tuple(y.shape[1:]) + (n_features,), dtype=dtype)
        if not self.fit_intercept:
            intercept = np.zeros(tuple(y.shape[1:]))
        elif is_numpy_namespace(xp):
            intercept = _average(y.astype(np.float64), sample_weight)
        else:
            intercept = to_numpy(_weighted_mean(y, sample_weight))
        intercept = np.asarray(intercept, dtype=dtype)[()]
        self._last_coef, self._last_intercept = _like(coef, y), _like(intercept, y)
        self._coef_sum = None
        self._n_summed = 0
        self._publish(y)

    def _check_library(self, X):
        """Refuse data of another array library or device than the model's:
        the running statistics and coefficients live there."""
        if is_numpy_data(X) and is_numpy_data(self.coef_):
            return
        xp, device = array_namespace(X)
        fitted_xp, fitted_device = array_namespace(self.coef_)
        if xp.__name__ != fitted_xp.__name__ or str(device) != str(fitted_device):
            raise ValueError(
                f"X is an array of {xp.__name__!r} on device {device!r}, but "
                f"the model was fitted on arrays of {fitted_xp.__name__!r} on "
                f"device {fitted_device!r}; pass every partial_fit call data of "
                "one library and device."
            )

    def _check_targets(self, y):
        if y.shape[1:] != self.coef_.shape[:-1]:
            raise ValueError(
                f"y has {y.shape[1] if y.ndim == 2 else 1} target column(s) "
                f"but the model was fitted with "
                f"{self.coef_.shape[0] if self.coef_.ndim == 2 else 1}; pass y "
                "of the same shape to every partial_fit call."
            )

    def _schedule(self, bound, internal):
        """The step schedule; ``bound`` is the largest step that cannot
        diverge."""
        if self.learning_rate == "auto":
            n_coordinates = np.count_nonzero(internal.inv_scale) + self.fit_intercept
            return AutoSchedule(
                bound,
                floor_per_step=n_coordinates / (2 * self._batch),
                tol=self.tol,
                patience=self.n_iter_no_change,
            )
        if self.learning_rate == "constant":
            return ConstantSchedule(self.eta0)
        if self.learning_rate == "invscaling":
            return InverseScalingSchedule(self.eta0, self.power_t)
        return AdaptiveSchedule(self.eta0, self.n_iter_no_change, factor=5.0)

    def _internal_problem(self, X, y, sample_weight):
        """Scaling, penalty strengths and step weights in internal units,
        without whitening (see ``_whiten``)."""
        l1, l2 = self._penalty_strengths()
        y_scale = _target_scale(y, sample_weight)
        _, mean, std = self._moments
        mean, std = _host(mean), _host(std)
        center, inv_scale = internal_coordinates(
            mean, std, fit_intercept=self.fit_intercept, l2=l2, dtype=np.float64
        )
        with np.errstate(divide="ignore"):
            scale = np.where(inv_scale > 0, 1.0 / inv_scale, np.inf)
        xp, _ = array_namespace(X)
        numpy_input = is_numpy_namespace(xp)
        uniform = bool(xp.all(sample_weight == sample_weight[0]))
        mean_weight = sample_weight.mean() if numpy_input else xp.mean(sample_weight)
        return _Internal(
            center=center,
            inv_scale=inv_scale,
            scale=scale,
            l2=l2 * inv_scale**2,
            l1=(l1 / y_scale * inv_scale) if l1 > 0 else None,
            steps_weight=None if uniform else sample_weight / mean_weight,
            rotation=None,
            y_scale=y_scale,
        )

    def _whiten(self, internal, X, sample_weight, gram=None):
        """Rotate ``internal`` to whitened coordinates where that pays (see
        Notes); ``gram`` is the covariance of the scaled rows if already
        computed. Returns whether it rotated. Without a penalty it also
        sets ``internal.informative``, the basis of the directions in which
        the rotated covariance is the identity (it is zero in the others)."""
        if internal.l2.max(initial=0) == 0:
            whitened = whitening_rotation(
                X, sample_weight, internal.center, internal.inv_scale, gram
            )
            rotation = None
            if whitened is not None:
                S, S_inv, internal.informative = whitened
                rotation = (S, S_inv)
            penalty = internal.l2
        else:
            whitened = penalised_whitening(
                X, sample_weight, internal.center, internal.inv_scale,
                internal.l2, gram,
            )  # fmt: skip
            rotation, penalty = whitened or (None, internal.l2)
        if rotation is None:
            return False
        internal.rotation, internal.unrotation = rotation
        internal.l2 = penalty
        return True

    def _run(self, X, y, sample_weight, rng, max_epochs, validation, X_all, y_all,
             partial=False, hooks=None):  # fmt: skip
        """Run up to ``max_epochs`` epochs from the current coefficients;
        ``hooks`` hears each epoch's end and may stop the fit."""
        if not (partial and hasattr(self, "_batch")):
            self._batch = self._batch_for(None if partial else X.shape[0])
        internal = self._internal_problem(X, y, sample_weight)
        xp, device = array_namespace(X)
        if is_numpy_namespace(xp):
            y = y.astype(np.float64) / internal.y_scale
        else:
            y = xp.astype(y, widest_float(xp, device)) / internal.y_scale
        rows = None
        if not partial and max_epochs > 1 and self.momentum == 0:
            rows = _internal_rows(X, y, internal)
        # Whitening is written for NumPy data: other libraries' data keep
        # the diagonal scaling. An L1 part is not invariant under rotations.
        # With the internal copy of the rows, their covariance comes from
        # it, and the copy is rotated in place.
        n_features = X.shape[1]
        certificate = None
        if not partial and is_numpy_data(X) and internal.l1 is None:
            gram = weights = None
            if rows is not None and n_features <= _CERTIFICATE_MAX_FEATURES:
                weights = _row_weights(sample_weight)
                Z = rows[:, :n_features]
                gram = Z.T @ (
                    Z * (weights if np.ndim(weights) == 0 else weights[:, None])
                )
            if self._whiten(internal, X, sample_weight, gram) and rows is not None:
                rows[:, :n_features] = rows[:, :n_features] @ internal.rotation
            if gram is not None:
                certificate = _certificate(
                    rows, gram, internal, weights, self.fit_intercept
                )
        V, b = internal.to_internal(_host(self._last_coef), _host(self._last_intercept))

        uniform_l2 = np.ptp(internal.l2) <= 1e-12 * max(internal.l2.max(), 1e-300)
        bound = self._stable_step(X, internal, rows)
        settings = (self.learning_rate, self.eta0, self.power_t, self._batch)
        if not (partial and getattr(self, "_schedule_settings", None) == settings):
            self._schedule_ = self._schedule(bound, internal)
            self._schedule_settings = settings
        self._schedule_.cap(bound)
        reference = _trivial_loss(y, sample_weight, self.fit_intercept)

        n_samples = X.shape[0]
        n_updates = ceil(n_samples / self._batch)
        loss_curve, scores = [], []
        best = previous = np.inf
        stalled, converged = 0, False
        velocity = np.zeros_like(V) if self.momentum > 0 else None
        # 'auto' judges progress over rounds of whole epochs holding at
        # least 128 updates, so that tiny data sets, with a few updates per
        # epoch, are not stopped by the noise of single epochs.
        round_length = 1
        if self.learning_rate == "auto":
            round_length = ceil(128 / n_updates)
        report = self._reporter()
        if validation is not None:
            X_validation, y_validation = _rows_of(validation, X_all, y_all)
        start = sum(self._objective(X, y, sample_weight, internal)) if partial else None
        # 'auto' with the certificate, without averaging or early stopping,
        # steers by the exact excess (see Notes): from the second epoch on,
        # it continues from the better of the last iterate and the epoch's
        # mean iterate.
        certified = (
            certificate is not None
            and self.learning_rate == "auto"
            and not self.average
            and validation is None
        )
        # With the certificate, and without averaging, early stopping or
        # callbacks, no epoch needs the coefficients in the units of X: they
        # are formed once, after the last epoch.
        per_epoch = (
            certificate is None
            or self.average
            or validation is not None
            or (hooks is not None and hooks.per_step)
        )
        previous_excess = np.inf
        initial = (V, b)
        passes = self._passes(X, y, internal, velocity, uniform_l2, rows)
        for epoch in range(max_epochs):
            order = rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)
            steps = self._schedule_.steps(self.t_, n_updates)
            with np.errstate(over="ignore", invalid="ignore"):
                result, velocity = self._pass(
                    X, y, internal, order, V, b, steps, velocity, passes,
                    average=self.average or (certified and epoch > 0),
                )  # fmt: skip
            self.t_ += n_updates
            V, b = result.coef, result.intercept
            excess = None
            if certificate is None:
                self._set_last(internal, V, b, X)
                if self.average:
                    self._accumulate(internal, result, n_updates)
                self._publish(X)
                data_fit, penalty = self._objective(X, y, sample_weight, internal)
            elif self.average:
                self._accumulate(internal, result, n_updates)
                V_out, b_out = internal.to_internal(
                    _host(self._coef_sum / self._n_summed),
                    _host(self._intercept_sum / self._n_summed),
                )
                data_fit, excess = certificate.evaluate((V_out, b_out))
                penalty = internal.penalty(V_out)
            elif certified and epoch == 0:
                # The starting point's excess, in the same product, judges
                # the first epoch's progress.
                (data_fit, excess), (_, previous_excess) = certificate.evaluate(
                    (V, b), initial
                )
                penalty = internal.penalty(V)
            elif result.coef_sum is None:
                data_fit, excess = certificate.evaluate((V, b))
                penalty = internal.penalty(V)
            else:
                V_mean = result.coef_sum / n_updates
                b_mean = result.intercept_sum / n_updates
                (data_fit, excess), (mean_fit, mean_excess) = certificate.evaluate(
                    (V, b), (V_mean, b_mean)
                )
                if mean_excess < excess:
                    V, b, data_fit, excess = V_mean, b_mean, mean_fit, mean_excess
                penalty = internal.penalty(V)
            if per_epoch and certificate is not None:
                self._set_last(internal, V, b, X)
                self._publish(X)
            self._check_divergence(data_fit, reference, epoch + 1, bound)
            loss = data_fit + penalty
            loss_curve.append(_times(_times(loss, internal.y_scale), internal.y_scale))

            if validation is not None:
                score = r2_score(y_validation, self._linear_predict(X_validation))
                scores.append(score)
                improved = (
                    score
                    > (max(scores[:-1]) if len(scores) > 1 else -np.inf) + self.tol
                )
                rose = len(scores) > 1 and score < scores[-2]
            else:
                # 'auto' judges progress against the previous epoch, so that
                # one lucky epoch does not make steady progress look stalled.
                reference_loss = previous if self.learning_rate == "auto" else best
                improved = loss < reference_loss * (1 - self.tol)
                rose = loss > previous
            if report is not None:
                report(epoch + 1, loss_curve[-1], self._schedule_.current, np.nan)
            if hooks is not None and hooks.step(self._solution) and not partial:
                # A callback ended the fit: no convergence warning.
                converged = True
                break
            if partial:
                # A pass that leaves its own rows fitted worse than before
                # has reached the step's noise floor: lower the step.
                self._schedule_.end_epoch(loss < start * (1 - self.tol), loss > start)
                continue
            if (
                excess is not None
                and self.learning_rate == "auto"
                and validation is None
                and excess <= self.tol * max(loss, 1e-16 * reference)
            ):
                converged = True
                break
            if certified:
                # Epochs that improve the objective by less than tol count as
                # stalled; n_iter_no_change of them in a row end the fit.
                stalled = 0 if improved else stalled + 1
                previous = loss
                self._schedule_.end_certified_epoch(
                    excess,
                    previous_excess,
                    n_updates,
                    certificate.curvature,
                    target=self.tol * max(loss, 1e-16 * reference),
                )
                previous_excess = excess
                if stalled >= self.n_iter_no_change:
                    converged = True
                    break
                continue
            if (epoch + 1) % round_length:
                continue
            best, previous = min(best, loss), loss
            stalled = 0 if improved else stalled + 1
            keep_going = self._schedule_.end_epoch(improved, rose)
            if isinstance(self._schedule_, AdaptiveSchedule):
                if not keep_going:
                    converged = True
                    break
            elif stalled >= self.n_iter_no_change:
                converged = True
                break

        if not per_epoch:
            self._set_last(internal, V, b, X)
            self._publish(X)
        self.n_iter_ = len(loss_curve)
        self.loss_curve_ = loss_curve
        if validation is not None:
            self.validation_scores_ = scores
            self.best_validation_score_ = max(scores)
        check_finite_result(
            type(self).__name__,
            self.coef_,
            self.intercept_,
            "Rescale X and y, or lower the learning rate.",
        )
        if not partial and not converged:
            warnings.warn(
                f"{type(self).__name__} did not converge: max_iter="
                f"{self.max_iter} epochs ended the fit while the loss was still "
                f"improving by more than tol={self.tol}. Increase max_iter, or "
                "raise tol.",
                ConvergenceWarning,
            )

    def _passes(self, X, y, internal, velocity, uniform_l2, rows):
        """The exact blocked kernel's passes over this data, or None where it
        does not apply: data of libraries other than NumPy, momentum, and
        wide sparse data with an L2 strength per coordinate run one
        mini-batch at a time. ``rows`` are the kernel's prepared internal
        rows, if any."""
        if not is_numpy_data(X):
            return None
        wide = sp.issparse(X) and X.shape[1] > _DENSE_BLOCKS_MAX_FEATURES
        if velocity is not None or (wide and not uniform_l2):
            return None
        return SGDPasses(
            X, y, internal.steps_weight,
            l2=float(internal.l2.max(initial=0)) if uniform_l2 else internal.l2,
            l1=internal.l1, center=internal.center, scale=internal.scale,
            fit_intercept=self.fit_intercept, batch_size=self._batch,
            rotation=internal.rotation, rows=rows,
        )  # fmt: skip

    def _pass(self, X, y, internal, order, V, b, steps, velocity, passes,
              average=False):  # fmt: skip
        """One pass over ``order``: with ``passes`` (see ``_passes``) by the
        exact blocked kernel, else one mini-batch at a time; ``average`` asks
        for the sums of the iterates. Returns the result and the velocity."""
        if passes is not None:
            return passes.run(order, V, b, steps, average=average), None
        loop = _minibatch_loop_pass if is_numpy_data(X) else _minibatch_loop_pass_xp
        return loop(
            X, y, internal, order, V, b, steps, self._batch,
            self.fit_intercept, average, self.momentum, velocity,
        )  # fmt: skip

    def _objective(self, X, y, sample_weight, internal):
        """The data-fit and penalty parts of the objective of the published
        coefficients, for targets divided by ``internal.y_scale``: one
        product with ``X``, in the library of ``X``."""
        coef, intercept = _host(self.coef_), _host(self.intercept_)
        if is_numpy_data(X):
            with np.errstate(over="ignore", invalid="ignore"):
                scaled = (coef / internal.y_scale).astype(X.dtype)
                prediction = safe_sparse_dot(X, scaled.T, dense_output=True)
                residual = y - prediction - intercept / internal.y_scale
                data = np.sum(_average(residual**2, sample_weight))
        else:
            data = _data_fit(X, y, sample_weight, coef / internal.y_scale,
                             intercept / internal.y_scale)  # fmt: skip
        V, _ = internal.to_internal(coef, intercept)
        return 0.5 * float(data), internal.penalty(V)

    def _stable_step(self, X, internal, rows=None):
        """Largest step with which no update can make the iterates diverge.

        A mini-batch update multiplies the coefficients by ``I - eta * A``
        with ``A`` the batch's mean of ``s_i z_i z_i^T`` (plus the L2 part);
        its largest eigenvalue is at most its trace, and the trace of any
        batch is at most the mean of the ``batch_size`` largest values of
        ``s_i (|z_i|^2 + 1)``. A step of one over that bound keeps every
        update a contraction, whatever the order of the samples.
        """
        m = min(self._batch, X.shape[0])
        if rows is not None:
            Z = rows[:, : X.shape[1]]
            norms = np.einsum("ij,ij->i", Z, Z)
        elif is_numpy_data(X):
            norms = row_norms_sq(X, internal.center, internal.scale, internal.rotation)
        else:
            norms = None
        if norms is None:
            largest = _largest_row_norms(X, internal, self.fit_intercept, m)
        else:
            norms += float(self.fit_intercept)
            if internal.steps_weight is not None:
                norms *= internal.steps_weight
            largest = np.partition(norms, norms.size - m)[norms.size - m :]
        l2 = internal.l2.max(initial=0)
        curvature = largest.mean() + l2
        bound = 1.0 / curvature if curvature > 0 else 1.0
        # The L2 part alone shrinks by (1 - step * l2) per update, which must
        # stay positive for the blocked updates; only degenerate data (all
        # rows at the centre) come near it.
        return min(bound, 0.5 / l2) if l2 > 0 else bound

    def _check_divergence(self, loss, reference, epoch, bound):
        """Raise if the epoch's data-fit loss is not finite or far above a
        trivial model's."""
        if np.isfinite(loss) and loss <= 1e4 * reference:
            return
        name = type(self).__name__
        if self.learning_rate == "auto":
            raise FloatingPointError(
                f"{name} met non-finite values in epoch {epoch} although its "
                "steps cannot diverge: the data likely hold values near the "
                "limit of their floating-point type. Rescale X and y, or pass "
                "them as float64."
            )
        raise ValueError(
            f"{name} diverged: the loss reached {loss / reference:.4g} times that "
            f"of a constant prediction in epoch {epoch}. The step size of "
            f"learning_rate={self.learning_rate!r} with eta0={self.eta0} is too "
            f"large for this data; steps up to {bound:.3g} cannot diverge here. "
            "Lower eta0, or use learning_rate='auto'."
        )

    def _solution(self):
        """The published coefficients, for the callbacks."""
        return {"coef_": self.coef_, "intercept_": self.intercept_}

    def _set_last(self, internal, V, b, X):
        """Keep the internal iterate ``(V, b)`` in the units, library and
        device of ``X``."""
        last_coef, last_intercept = internal.to_user(V, b)
        self._last_coef = _like(last_coef, X)
        self._last_intercept = _like(last_intercept, X)

    def _accumulate(self, internal, result, n_updates):
        """Add a pass's iterate sums (in the units of X) to the average."""
        coef_sum, intercept_sum = internal.to_user(
            result.coef_sum, result.intercept_sum
        )
        coef_sum, intercept_sum = (
            _like(coef_sum, self.coef_),
            _like(intercept_sum, self.coef_),
        )
        if self._coef_sum is None:
            self._coef_sum, self._intercept_sum = coef_sum, intercept_sum
        else:
            self._coef_sum = self._coef_sum + coef_sum
            self._intercept_sum = self._intercept_sum + intercept_sum
        self._n_summed += n_updates

    def _publish(self, X):
        """Set ``coef_`` and ``intercept_`` from the last or averaged iterate,
        in the dtype, library and device of ``X``."""
        if self.average and self._n_summed:
            coef = self._coef_sum / self._n_summed
            intercept = self._intercept_sum / self._n_summed
        else:
            coef, intercept = self._last_coef, self._last_intercept
        if is_numpy_data(X):
            self.coef_ = np.asarray(coef, dtype=X.dtype)
            self.intercept_ = np.asarray(intercept, dtype=X.dtype)[()]
        else:
            xp, _ = array_namespace(X)
            self.coef_ = xp.astype(coef, X.dtype)
            self.intercept_ = xp.astype(intercept, X.dtype)


class _Internal:
    """Coordinates of one run of SGD and the maps to the units of X.

    Internal rows are ``z = ((x - center) * inv_scale) @ R`` for a
    rotation pair ``(R, R^-1)`` (None: the identity), and internal
    coefficients ``u`` give ``coef = inv_scale * (R @ u)``. After plain
    whitening ``informative`` is the basis of the directions in which the
    rows' covariance is the identity (None otherwise).
    """

    def __init__(
        self, center, inv_scale, scale, l2, l1, steps_weight, rotation, y_scale
    ):
        self.center = center
        self.inv_scale = inv_scale
        self.scale = scale
        self.l2 = l2
        self.l1 = l1
        self.steps_weight = steps_weight
        self.rotation, self.unrotation = rotation or (None, None)
        self.y_scale = y_scale
        self.informative = None

    def to_internal(self, coef, intercept):
        """``coef_``-shaped coefficients in X's units to internal ``(V, b)``."""
        coef = np.asarray(coef, dtype=np.float64).T / self.y_scale
        intercept = np.asarray(intercept, dtype=np.float64) / self.y_scale
        intercept = intercept + self.center @ coef
        scale = np.where(np.isfinite(self.scale), self.scale, 0.0)
        V = coef * _rows(scale, coef)
        if self.unrotation is not None:
            V = self.unrotation @ V
        return V, intercept

    def to_user(self, V, b):
        """Internal ``(V, b)`` to ``coef_``-shaped coefficients and intercept."""
        if self.rotation is not None:
            V = self.rotation @ V
        with np.errstate(over="ignore", invalid="ignore"):
            coef = V * _rows(self.inv_scale, V)
            intercept = (b - self.center @ coef) * self.y_scale
            coef = coef * self.y_scale
        return coef.T.copy(), np.asarray(intercept)

    def penalty(self, V):
        """The penalty's value: diagonal in the internal coordinates, also
        when they are rotated."""
        if self.l1 is None and not self.l2.any():
            return 0.0
        value = 0.5 * np.sum(_rows(self.l2, V) * V * V)
        if self.l1 is not None:
            value += np.sum(_rows(self.l1, V) * np.abs(V))
        return float(value)


class _GapCertificate:
    """The objective and its exact distance to the minimum, from the
    internal rows, for problems without an L1 part.

    With ``A`` the internal rows ``[z_i, 1]`` (``z_i`` alone without an
    intercept), ``P`` the normalised sample weights and ``L`` the L2
    curvature per coordinate, the objective is quadratic with Hessian ``H =
    A^T P A + L``, so at coefficients ``theta`` with gradient ``g`` the
    excess over the minimum is exactly ``g^T H^+ g / 2``. Evaluating it costs
    two products with the rows, as many as the objective alone would.
    ``weights`` are ``P`` (one number when all are equal, see
    :func:`_row_weights`) and ``hessian`` is ``A^T P A``; or ``inverse``
    and ``curvature`` give ``(H + L)^+`` and its smallest kept curvature
    directly (see :meth:`whitened`).
    Directions of ``H`` below ``1e-10`` of its largest curvature (exact
    collinearity, up to rounding) are left out: gradients have no component
    there.
    """

    def __init__(
        self, rows, weights, l2, hessian=None, *, inverse=None, curvature=None
    ):
        self.rows = rows
        self.weights = weights
        self.n_features = l2.shape[0]
        self.n_coords = (hessian if inverse is None else inverse).shape[0]
        self.n_targets = rows.shape[1] - self.n_features - 1
        self.l2 = np.zeros(self.n_coords)
        self.l2[: self.n_features] = l2
        self.penalised = bool(np.any(self.l2))
        if inverse is None:
            lam, Q = np.linalg.eigh(hessian + np.diag(self.l2))
            keep = lam > 1e-10 * max(lam[-1], 1e-300)
            inverse = (Q[:, keep] / lam[keep]) @ Q[:, keep].T
            curvature = float(lam[keep].min(initial=np.inf))
        self.inverse, self.curvature = inverse, curvature
        self._theta = {}

    @classmethod
    def whitened(cls, rows, weights, informative, fit_intercept):
        """The certificate of whitened, unpenalised rows, from the basis
        ``informative`` of the directions in which their covariance is the
        identity (zero in the others, see :func:`whitening_rotation`).

        With an intercept the rows are centred, so the Hessian is that
        covariance bordered by a 1 for the intercept (the border of means is
        zero up to rounding); without one the covariance is that of the
        uncentred rows, which the rotation whitened. Either way its
        pseudo-inverse is the projection onto the informative directions
        (and the intercept), and every kept curvature is one: no
        eigendecomposition is needed.
        """
        d = informative.shape[0]
        n_coords = d + 1 if fit_intercept else d
        inverse = np.zeros((n_coords, n_coords))
        inverse[:d, :d] = informative @ informative.T
        if fit_intercept:
            inverse[d, d] = 1.0
        return cls(rows, weights, np.zeros(d), inverse=inverse, curvature=1.0)

    def _coefficients(self, n_candidates):
        """A buffer for the candidates' coefficients, one row per candidate
        and target, ``[V^T, b, e_t]`` so that its product with a row ``[z,
        1, -y]`` is the residual; the target part is set once."""
        theta = self._theta.get(n_candidates)
        if theta is None:
            k = self.n_targets
            theta = np.zeros((n_candidates * k, self.rows.shape[1]))
            theta[:, self.n_features + 1 :] = np.tile(np.eye(k), (n_candidates, 1))
            self._theta[n_candidates] = theta
        return theta

    def evaluate(self, *candidates):
        """The data-fit part of the objective and the excess of the whole
        objective over its minimum (both summed over targets), for each
        candidate ``(V, b)`` of internal coefficients and intercept; one
        product with the rows serves all candidates."""
        k, d = self.n_targets, self.n_features
        theta = self._coefficients(len(candidates))
        for i, (V, b) in enumerate(candidates):
            theta[i * k : (i + 1) * k, :d] = V.reshape(d, k).T
            theta[i * k : (i + 1) * k, d] = b
        # Diverging iterates (a user's step far too large) overflow here;
        # the caller reports them.
        with np.errstate(over="ignore", invalid="ignore"):
            # Candidates as rows, so that each residual vector is contiguous.
            weighted = theta @ self.rows.T
            if np.ndim(self.weights):
                weighted *= self.weights
            # sum_i p_i r_i [z_i, 1, -y_i]: its first coordinates are the
            # gradient of the data fit, and its product with theta is
            # sum_i p_i r_i^2, twice the data fit.
            sums = weighted @ self.rows
            if not np.ndim(self.weights):
                sums *= self.weights
            data_fit = 0.5 * np.einsum("ij,ij->i", sums, theta)
            gradient = sums[:, : self.n_coords]
            if self.penalised:
                gradient += self.l2 * theta[:, : self.n_coords]
            excess = 0.5 * np.einsum("ij,ij->i", gradient @ self.inverse, gradient)
        if k > 1:
            data_fit = data_fit.reshape(len(candidates), k).sum(axis=1)
            excess = excess.reshape(len(candidates), k).sum(axis=1)
        results = [
            (max(float(fit), 0.0), max(float(gap), 0.0))
            for fit, gap in zip(data_fit.tolist(), excess.tolist(), strict=True)
        ]
        return results if len(candidates) > 1 else results[0]


def _row_weights(sample_weight):
    """Sample weights normalised to sum to one: the number ``1 / n`` when
    they are all equal, which saves a product with the rows per use."""
    weights = np.asarray(sample_weight, dtype=np.float64)
    if np.all(weights == weights[0]):
        return 1.0 / weights.size
    return weights / weights.sum()


def _certificate(rows, gram, internal, weights, fit_intercept):
    """The gap certificate of the internal rows, from the covariance ``gram``
    of the unrotated scaled rows: known in closed form after plain
    whitening, else from the Hessian (see :func:`_hessian`)."""
    if internal.informative is not None:
        return _GapCertificate.whitened(
            rows, weights, internal.informative, fit_intercept
        )
    hessian = _hessian(rows, gram, internal, weights, fit_intercept)
    return _GapCertificate(rows, weights, internal.l2, hessian)


def _hessian(rows, gram, internal, weights, fit_intercept):
    """The objective's Hessian without the penalty, over the internal
    coordinates (and the intercept), from the covariance ``gram`` of the
    unrotated scaled rows: ``R^T gram R`` for the rotation ``R``, bordered
    by the weighted mean of the (rotated) rows and a 1 for the intercept;
    ``weights`` as from :func:`_row_weights`."""
    d = gram.shape[0]
    R = internal.rotation
    covariance = gram if R is None else R.T @ gram @ R
    if not fit_intercept:
        return covariance
    mean = np.broadcast_to(weights, rows.shape[:1]) @ rows[:, :d]
    H = np.empty((d + 1, d + 1))
    H[:d, :d] = covariance
    H[:d, d] = H[d, :d] = mean
    H[d, d] = 1.0
    return H


# OpenBLAS spreads a matrix product of at least about 2**18 multiply-adds,
# and a dot product of over 10,000 values, over its threads. On data of up
# to 2**22 values a fit's large products are a small part of its time, and
# on two cores the threads' wake-ups cost more than they save.
_THREADED_MIN_WORK = 1 << 18
_THREADED_MIN_LENGTH = 10_000
_ONE_THREAD_MAX_VALUES = 1 << 22


def _one_blas_thread(X):
    """A context in which BLAS runs on one thread, for NumPy data of at
    most ``2**22`` values whose covariance product BLAS would thread (see
    Notes of ``SGDLinearRegressor``); else, or without threadpoolctl, a
    context that does nothing."""
    n_samples, n_features = X.shape
    threaded = (
        n_samples * n_features**2 >= _THREADED_MIN_WORK
        or n_samples > _THREADED_MIN_LENGTH
    )
    if (
        not threaded
        or n_samples * n_features > _ONE_THREAD_MAX_VALUES
        or not is_numpy_data(X)
    ):
        return nullcontext()
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1)


@cache
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (scikit-learn
    requires threadpoolctl), made once; None if it cannot be imported."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


def _partial_fit_rng(random_state, t):
    """Shuffling for one ``partial_fit`` call: reproducible for an int seed,
    yet different from call to call."""
    if isinstance(random_state, Integral):
        return np.random.default_rng((int(random_state), int(t)))
    return _random_state(random_state)


def _random_state(random_state):
    """The generator of a fit's shuffling and validation split.

    An int seeds it; None draws fresh entropy from the operating system
    instead of advancing NumPy's global generator; a ``RandomState``
    instance gives it a seed, so that its own state advances. (A
    ``Generator`` starts in a few microseconds, a ``RandomState`` in about a
    hundred.)
    """
    if random_state is None or isinstance(random_state, Integral):
        return np.random.default_rng(random_state)
    seed = check_random_state(random_state).randint(2**32, dtype=np.uint32)
    return np.random.default_rng(seed)


def _rows(v, like):
    return v if like.ndim == 1 else v[:, None]


def _take(X, y, sample_weight, rows):
    if rows is None:
        return X, y, sample_weight
    return _rows_of(rows, X, y, sample_weight)


def _rows_of(rows, *arrays):
    """The given rows (NumPy indices) of arrays of one library and device."""
    xp, device = array_namespace(arrays[0])
    if is_numpy_namespace(xp):
        return tuple(a[rows] for a in arrays)
    rows = xp.asarray(rows, device=device)
    return tuple(xp.take(a, rows, axis=0) for a in arrays)


def _moments_of(X, sample_weight):
    """Weight sum, column means and standard deviations of ``X``, in the
    library and widest float of ``X``."""
    xp, device = array_namespace(X)
    if is_numpy_namespace(xp):
        return (
            sample_weight.sum(dtype=np.float64),
            *weighted_moments(X, sample_weight),
        )
    weights = xp.astype(sample_weight, widest_float(xp, device))
    return (float(xp.sum(weights)), *weighted_moments(X, sample_weight))


def _host(a):
    """NumPy values of an array of any library; NumPy values pass through."""
    if isinstance(a, (np.ndarray, np.generic, float)):
        return a
    return to_numpy(a)


def _like(a, like):
    """NumPy values ``a`` in the library and on the device of ``like``, in its
    widest float; unchanged when ``like`` is NumPy data."""
    if is_numpy_data(like):
        return a
    xp, device = array_namespace(like)
    wide = widest_float(xp, device)
    return xp.asarray(np.asarray(a, dtype=np.float64), dtype=wide, device=device)


def _host_dtype(X):
    """The NumPy dtype matching the floating dtype of ``X``."""
    xp, _ = array_namespace(X)
    if is_numpy_namespace(xp):
        return X.dtype
    return np.dtype(np.float32) if X.dtype == xp.float32 else np.dtype(np.float64)


def _on_device(a, like):
    """NumPy values as an array of the library, device and dtype of ``like``."""
    xp, device = array_namespace(like)
    return xp.asarray(np.asarray(a, dtype=np.float64), dtype=like.dtype, device=device)


def _average(y, sample_weight):
    """Weighted mean of the rows of the NumPy array ``y`` (as
    ``np.average``, with less overhead).

    For one-dimensional ``y`` the weighted sum is an ``einsum``, not a BLAS
    dot product: OpenBLAS spreads a dot product of more than about 10,000
    values over its threads, and on two cores, just after a LAPACK call
    (scikit-learn's ``LinearRegression``, say), waking them took 3 ms here
    for a product that costs 2 microseconds.
    """
    if y.ndim == 1:
        return np.einsum("i,i->", sample_weight, y) / sample_weight.sum()
    return (sample_weight @ y) / sample_weight.sum()


def _weighted_mean(y, sample_weight):
    """Weighted mean of the rows of ``y``, in its library's widest float."""
    xp, device = array_namespace(y)
    wide = widest_float(xp, device)
    weights = xp.astype(sample_weight, wide)
    y = xp.astype(y, wide)
    return xp.sum(y * _rows(weights, y), axis=0) / xp.sum(weights)


def _data_fit(X, y, sample_weight, coef, intercept):
    """Weighted mean squared residual (summed over targets) of ``coef`` and
    ``intercept`` (NumPy values), computed in the library of ``X``."""
    xp, _ = array_namespace(X)
    coef = _on_device(coef.T, X)
    residual = y - xp.astype(X @ coef, y.dtype) - _on_device(intercept, y)
    return xp.sum(_weighted_mean(residual**2, sample_weight))


def _largest_row_norms(X, internal, fit_intercept, m):
    """The ``m`` largest values of ``s_i (|z_i|^2 + k)`` (see
    ``_stable_step``), computed in the library of ``X``, as NumPy values."""
    xp, device = array_namespace(X)
    wide = xp.ones((), dtype=widest_float(xp, device), device=device)
    center, inv_scale = (
        _on_device(a, wide) for a in (internal.center, internal.inv_scale)
    )
    norms = []
    for rows in _row_chunks(X):
        Z = (xp.astype(X[rows, ...], wide.dtype) - center) * inv_scale
        norms.append(xp.sum(Z * Z, axis=1))
    norms = xp.concat(norms) + float(fit_intercept)
    if internal.steps_weight is not None:
        norms = norms * xp.astype(internal.steps_weight, wide.dtype)
    return to_numpy(xp.sort(norms)[norms.shape[0] - m :])


def _target_scale(y, sample_weight):
    """Largest deviation of the targets from their mean, or 1 if none."""
    xp, device = array_namespace(y)
    if not is_numpy_namespace(xp):
        deviation = xp.abs(
            xp.astype(y, widest_float(xp, device)) - _weighted_mean(y, sample_weight)
        )
        scale = float(xp.max(deviation)) if deviation.shape[0] else 0.0
        return scale if 0 < scale < np.inf else 1.0
    y = y.astype(np.float64)
    mean = _average(y, sample_weight)
    with np.errstate(over="ignore"):
        scale = float(np.max(np.abs(y - mean), initial=0.0))
    return scale if 0 < scale < np.inf else 1.0


def _times(value, factor):
    """``value * factor``, infinite rather than a warning on overflow."""
    with np.errstate(over="ignore"):
        return float(np.float64(value) * factor)


def _trivial_loss(y, sample_weight, fit_intercept):
    """The loss of predicting the mean target (zero without an intercept).

    ``y`` is scaled to order one, so a floor of 1e-20 only matters for
    constant targets, whose loss stays at rounding level.
    """
    xp, _ = array_namespace(y)
    if not is_numpy_namespace(xp):
        mean = _weighted_mean(y, sample_weight) if fit_intercept else 0.0
        loss = xp.sum(_weighted_mean((y - mean) ** 2, sample_weight))
        return max(0.5 * float(loss), 1e-20)
    mean = _average(y, sample_weight) if fit_intercept else 0.0
    loss = np.sum(_average((y - mean) ** 2, sample_weight))
    return max(0.5 * float(loss), 1e-20)


class _LoopResult:
    """The fields of a kernel's pass result that the estimator reads."""

    def __init__(self, coef, intercept, sq_loss, coef_sum, intercept_sum):
        self.coef = coef
        self.intercept = intercept
        self.sq_loss = sq_loss
        self.coef_sum = coef_sum
        self.intercept_sum = intercept_sum


def _minibatch_loop_pass(X, y, internal, order, V, b, steps, batch_size,
                         fit_intercept, average, momentum, velocity):  # fmt: skip
    """One pass, one mini-batch at a time: momentum, and per-feature L2 on
    sparse data with more than 1000 features.

    Each update is the one of the class Notes, with heavy-ball momentum
    ``u <- momentum * u - step * gradient; v <- v + u`` (the intercept
    moves without momentum) and the L1 part applied by a proximal step after
    each update.
    """
    V = np.array(V, dtype=np.float64)
    b = np.array(b, dtype=np.float64)
    velocity = np.zeros_like(V) if velocity is None else velocity
    steps = np.broadcast_to(steps, (ceil(order.size / batch_size),))
    weight = internal.steps_weight
    coef_sum = np.zeros_like(V) if average else None
    intercept_sum = np.zeros_like(b) if average else None
    sq_loss = 0.0
    l2 = _rows(internal.l2, V)
    l1 = None if internal.l1 is None else _rows(internal.l1, V)
    for k, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start : start + batch_size]
        Z = _scaled_rows(X, rows, internal)
        s = np.ones(len(rows)) if weight is None else weight[rows]
        R = Z @ V + b - y[rows]
        sR = R * _rows(s, R) if R.ndim == 2 else R * s
        sq_loss += float(np.sum(sR * R))
        gradient = Z.T @ sR / len(rows) + l2 * V
        velocity = momentum * velocity - steps[k] * gradient
        V = V + velocity
        if l1 is not None:
            V = soft_threshold(V, steps[k] * l1)
        if fit_intercept:
            b = b - steps[k] * sR.sum(axis=0) / len(rows)
        if average:
            coef_sum += V
            intercept_sum += b
    result = _LoopResult(V, b if b.ndim else float(b), sq_loss, coef_sum, intercept_sum)
    return result, velocity


def _internal_rows(X, y, internal):
    """The kernel's internal rows of ``X`` and ``y`` when a copy pays and
    fits: NumPy data, dense or CSR with few enough features, and a float64
    copy of at most 1 GiB (for CSR, at most four times its own size);
    else None."""
    if not is_numpy_data(X):
        return None
    n, d = X.shape
    k = 1 if y.ndim == 1 else y.shape[1]
    size = 8 * n * (d + 1 + k)
    if sp.issparse(X):
        if d > _DENSE_BLOCKS_MAX_FEATURES:
            return None
        X = sp.csr_matrix(X)
        if size > 4 * (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes):
            return None
    if size > _INTERNAL_ROWS_MAX_BYTES:
        return None
    return internal_rows(X, y, internal.center, internal.scale, internal.rotation)


def _scaled_rows(X, rows, internal):
    """Rows of ``X`` in the internal coordinates, as a dense array."""
    block = X[rows]
    block = block.toarray() if sp.issparse(block) else np.asarray(block, np.float64)
    Z = (block - internal.center) * internal.inv_scale
    return Z if internal.rotation is None else Z @ internal.rotation


def _minibatch_loop_pass_xp(X, y, internal, order, V, b, steps, batch_size,
                            fit_intercept, average, momentum, velocity):  # fmt: skip
    """:func:`_minibatch_loop_pass` in the library and on the device of ``X``.

    The same updates, one mini-batch at a time: the rows of each mini-batch
    are gathered with ``take``, and the coefficients, the per-feature
    vectors and ``order`` (NumPy values) are moved to the device once per
    pass; the results come back as NumPy values.
    """
    steps = np.broadcast_to(steps, (ceil(order.size / batch_size),))
    xp, device = array_namespace(X)
    wide = xp.ones((), dtype=widest_float(xp, device), device=device)
    V, b = _on_device(V, wide), _on_device(b, wide)
    velocity = xp.zeros_like(V) if velocity is None else _on_device(velocity, wide)
    center, inv_scale = (
        _on_device(internal.center, wide),
        _on_device(internal.inv_scale, wide),
    )
    l2 = _rows(_on_device(internal.l2, wide), V)
    l1 = None if internal.l1 is None else _rows(_on_device(internal.l1, wide), V)
    weight = internal.steps_weight
    weight = None if weight is None else xp.astype(weight, wide.dtype)
    order = xp.asarray(order, device=device)
    coef_sum = xp.zeros_like(V) if average else None
    intercept_sum = xp.zeros_like(b) if average else None
    sq_loss = xp.zeros_like(wide)

    n_samples = order.shape[0]
    for k, start in enumerate(range(0, n_samples, batch_size)):
        rows = order[start : min(start + batch_size, n_samples)]
        m, step = rows.shape[0], float(steps[k])
        Z = (xp.astype(xp.take(X, rows, axis=0), wide.dtype) - center) * inv_scale
        R = Z @ V + b - xp.take(y, rows, axis=0)
        sR = R if weight is None else R * _rows(xp.take(weight, rows), R)
        sq_loss = sq_loss + xp.sum(sR * R)
        gradient = Z.T @ sR / m + l2 * V
        velocity = momentum * velocity - step * gradient
        V = V + velocity
        if l1 is not None:
            V = soft_threshold(V, step * l1)
        if fit_intercept:
            b = b - step * xp.sum(sR, axis=0) / m
        if average:
            coef_sum = coef_sum + V
            intercept_sum = intercept_sum + b

    host = [None if a is None else to_numpy(a) for a in (V, b, coef_sum, intercept_sum)]
    intercept = host[1] if b.ndim else float(host[1])
    result = _LoopResult(host[0], intercept, float(sq_loss), host[2], host[3])
    return result, to_numpy(velocity)
