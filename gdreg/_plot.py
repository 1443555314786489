"""Plots of a fit's progress: ``LossCurveDisplay``.

matplotlib is imported inside the methods that draw, so gdreg itself never
needs it.
"""

from sklearn.utils.validation import check_is_fitted


class LossCurveDisplay:
    """The objective after each iteration or epoch of a fitted regressor.

    Draws ``loss_curve_`` and, when the estimator stored them (early
    stopping), the ``validation_scores_`` on a second vertical axis that
    shares the horizontal one. Create it with :meth:`from_estimator`, or
    from stored curves with the constructor and then :meth:`plot`.

    Parameters
    ----------
    loss_curve : list of float
        The objective after each step.

    validation_scores : list of float or None, default=None
        The R^2 on held-out data after each step.

    estimator_name : str or None, default=None
        Shown in the legend.

    step_name : str, default='iteration'
        What one point of the curve is, for the horizontal axis label.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The loss curve.

    validation_line_ : matplotlib Line2D or None
        The validation scores, None without them.

    ax_ : matplotlib Axes
        The axes of the loss curve.

    validation_ax_ : matplotlib Axes or None
        The second axes, of the validation scores; None without them.

    figure_ : matplotlib Figure
        The figure holding the axes.

    See Also
    --------
    GDLinearRegressor : Stores ``loss_curve_`` per iteration.
    SGDLinearRegressor : Stores ``loss_curve_`` per epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from gdreg import GDLinearRegressor, LossCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = X @ np.array([1.0, 2.0, 3.0])
    >>> reg = GDLinearRegressor(acceleration="nesterov").fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(reg)
    >>> display.ax_.get_xlabel()
    'iteration'
    """

    def __init__(
        self,
        *,
        loss_curve,
        validation_scores=None,
        estimator_name=None,
        step_name="iteration",
    ):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name
        self.step_name = step_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, log_scale=False):
        """Plot the curves stored by a fitted estimator.

        Parameters
        ----------
        estimator : GDLinearRegressor or SGDLinearRegressor
            A fitted estimator with a ``loss_curve_``.

        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure and axes.

        name : str or None, default=None
            Legend label; None uses the estimator's class name.

        log_scale : bool, default=False
            Whether the loss axis is logarithmic.

        Returns
        -------
        display : LossCurveDisplay
            The display, with the drawn objects as attributes.
        """
        check_is_fitted(estimator)
        if not hasattr(estimator, "loss_curve_"):
            raise ValueError(
                f"{type(estimator).__name__} has no loss_curve_ to plot; pass a "
                "fitted GDLinearRegressor or SGDLinearRegressor."
            )
        step_name = "epoch" if hasattr(estimator, "partial_fit") else "iteration"
        display = cls(
            loss_curve=estimator.loss_curve_,
            validation_scores=getattr(estimator, "validation_scores_", None),
            estimator_name=type(estimator).__name__ if name is None else name,
            step_name=step_name,
        )
        return display.plot(ax=ax, log_scale=log_scale)

    def plot(self, *, ax=None, log_scale=False):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure and axes.

        log_scale : bool, default=False
            Whether the loss axis is logarithmic.

        Returns
        -------
        display : LossCurveDisplay
            This display, with ``ax_``, ``figure_`` and ``line_`` set.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        steps = range(1, len(self.loss_curve) + 1)
        label = "loss" if self.estimator_name is None else self.estimator_name
        (self.line_,) = ax.plot(steps, self.loss_curve, label=f"{label} (loss)")
        ax.set_xlabel(self.step_name)
        ax.set_ylabel("objective")
        if log_scale:
            ax.set_yscale("log")
        lines = [self.line_]

        self.validation_ax_ = self.validation_line_ = None
        if self.validation_scores is not None:
            self.validation_ax_ = ax.twinx()
            (self.validation_line_,) = self.validation_ax_.plot(
                range(1, len(self.validation_scores) + 1),
                self.validation_scores,
                color="C1",
                label=f"{label} (validation R^2)",
            )
            self.validation_ax_.set_ylabel("validation R^2")
            lines.append(self.validation_line_)
        ax.legend(lines, [line.get_label() for line in lines])

        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def _pyplot():
    """matplotlib.pyplot, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "LossCurveDisplay needs matplotlib, which is not installed; install "
            "it with `pip install matplotlib`."
        ) from exc
    return plt
