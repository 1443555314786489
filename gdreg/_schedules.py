"""Learning-rate schedules for stochastic gradient descent.

A schedule hands out the step sizes of the next updates from the global
update count ``t`` and hears, at the end of each epoch, whether the epoch
improved on the best loss so far.
"""

import numpy as np


class ConstantSchedule:
    """The same step ``eta0`` for every update."""

    def __init__(self, eta0):
        self.eta0 = eta0

    def steps(self, t, n_updates):
        """Step sizes of updates ``t, ..., t + n_updates - 1``: an array, or
        one float when they are all equal."""
        return float(self.eta0)

    def end_epoch(self, improved, rose=False):
        """Hear whether the epoch improved (and whether the objective rose);
        return False to stop."""
        return True

    def cap(self, bound):
        """Schedules with a user-given step ignore the stability bound."""

    @property
    def current(self):
        return self.eta0


class InverseScalingSchedule(ConstantSchedule):
    """``eta0 / (t + 1) ** power_t``, with ``t`` counted from 0."""

    def __init__(self, eta0, power_t):
        super().__init__(eta0)
        self.power_t = power_t

    def steps(self, t, n_updates):
        counts = np.arange(t + 1, t + n_updates + 1, dtype=np.float64)
        return self.eta0 / counts**self.power_t


class AdaptiveSchedule(ConstantSchedule):
    """Keep the step while the loss improves; divide it by ``factor`` when
    it has stalled for ``patience`` epochs.

    The fit stops once the step has fallen below ``eta0 * min_ratio``: by
    then no update moves the coefficients appreciably.
    """

    def __init__(self, eta0, patience, factor=5.0, min_ratio=1e-6):
        super().__init__(eta0)
        self.eta = eta0
        self.patience = patience
        self.factor = factor
        self.min_ratio = min_ratio
        self.stalled = 0

    def cap(self, bound):
        """Lower the step to ``bound`` if it is larger."""
        self.eta = min(self.eta, bound)

    def steps(self, t, n_updates):
        return float(self.eta)

    def end_epoch(self, improved, rose=False):
        self.stalled = 0 if improved else self.stalled + 1
        if self.stalled >= self.patience:
            self.eta /= self.factor
            self.stalled = 0
        return self.eta >= self.eta0 * self.min_ratio

    @property
    def current(self):
        return self.eta


class AutoSchedule(AdaptiveSchedule):
    """Start at the largest safe step; halve it whenever the objective rises,
    and stop once progress has stalled with a small enough step.

    With a constant step ``eta``, stochastic descent on least squares
    settles at an objective above the minimum by about ``eta * tr(H) / (2 *
    batch_size)`` of the noise level, ``H`` the Hessian in the scaled
    coordinates (its trace is about the number of coordinates there). An
    epoch whose objective rises has reached that floor, and halving the
    step lowers it; an epoch that improves only slowly is still on its way
    and keeps its step. The fit stops at a stalled epoch once the floor is
    below ``tol``, or after ``patience`` stalled epochs in a row. When the
    exact excess over the minimum is known, :meth:`end_certified_epoch`
    steers the step instead.
    """

    def __init__(self, eta0, floor_per_step, tol, patience):
        super().__init__(eta0, patience=patience, factor=2.0)
        self.floor_per_step = floor_per_step
        self.tol = tol
        # Contraction of the excess (in log units) since the last cut.
        self.progress = np.inf
        # The step before a cut: the next epoch glides from it to the new one.
        self._glide_from = None

    def steps(self, t, n_updates):
        """One step for the epoch, or after a cut of the step steps falling
        geometrically from the old step to the new one over the epoch."""
        start, self._glide_from = self._glide_from, None
        if start is None or n_updates < 2:
            return float(self.eta)
        # The geometric sequence in two calls (np.geomspace costs tenfold).
        ratio = (self.eta / start) ** (1.0 / (n_updates - 1))
        steps = np.power(ratio, np.arange(n_updates, dtype=np.float64))
        steps *= start
        steps[-1] = self.eta
        return steps

    def end_epoch(self, improved, rose=False):
        if improved:
            self.stalled = 0
            return True
        self.stalled += 1
        if self.eta * self.floor_per_step <= 0.1 * self.tol:
            return False
        if rose:
            self.eta /= self.factor
        return self.stalled < self.patience

    def end_certified_epoch(self, excess, previous, n_updates, curvature, target):
        """Hear an epoch's exact excess over the minimum (and the previous
        epoch's, or the starting point's); cut the step when the excess fell
        by less than the step's contraction alone would give.

        Along a direction of curvature ``c`` an epoch of ``n_updates`` steps
        of size ``eta`` shrinks the error by about ``exp(-eta * n_updates *
        c)``, and the excess by its square. An excess that falls by less
        than ``exp(-eta * n_updates * c)`` (``c`` the smallest curvature,
        of the slowest direction) is held up by the noise of the stochastic
        steps, which only a smaller step lowers. Once the iterates have
        settled, that noise falls about as the square of the step, so the
        cut is ``sqrt(target / (2 * excess))`` (``target`` the excess that
        ends the fit): it aims at half the target, since noise that only
        just reaches the target leaves even odds of one more epoch. It is
        kept between a fifth and a half: a deeper cut would slow
        the contraction more than it lowers the noise. The next epoch's
        steps glide from the old step to the new one. After a cut the step
        is kept until its contraction has had time to halve the excess, so
        that slow progress after a cut is not mistaken for noise.
        """
        rate = self.eta * n_updates * curvature
        self.progress += 2.0 * rate
        if excess > previous * np.exp(-rate) and self.progress >= np.log(2.0):
            self._glide_from = self.eta
            self.eta *= min(0.5, max(0.2, np.sqrt(0.5 * target / excess)))
            self.progress = 0.0
