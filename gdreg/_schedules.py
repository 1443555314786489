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
        """Step sizes of updates ``t, ..., t + n_updates - 1``."""
        return np.full(n_updates, self.eta0)

    def end_epoch(self, improved):
        """Hear whether the epoch improved; return False to stop."""
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
        return np.full(n_updates, self.eta)

    def end_epoch(self, improved):
        self.stalled = 0 if improved else self.stalled + 1
        if self.stalled >= self.patience:
            self.eta /= self.factor
            self.stalled = 0
        return self.eta >= self.eta0 * self.min_ratio

    @property
    def current(self):
        return self.eta


class AutoSchedule(AdaptiveSchedule):
    """Start at the largest safe step; halve it at each epoch that fails to
    improve, and stop at the second such epoch in a row.

    An epoch that does not improve means the iterates move around the
    minimum at a distance set by the step; halving the step halves that
    distance, and when even that no longer improves the loss, the fit is as
    close as the tolerance asks.
    """

    def __init__(self, eta0):
        super().__init__(eta0, patience=1, factor=2.0)

    def end_epoch(self, improved):
        if improved:
            self.stalled = 0
            return True
        self.stalled += 1
        if self.stalled >= 2:
            return False
        self.eta /= self.factor
        return True
