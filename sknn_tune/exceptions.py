"""Exceptions raised by sknn_tune."""


class DivergenceError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite.

    Raised instead of returning a model that predicts NaN. The per-epoch history up to the
    divergence is kept in the ``history`` attribute so the run can still be inspected and plotted.

    Examples
    --------
    >>> from sknn_tune.exceptions import DivergenceError
    >>> err = DivergenceError("diverged at epoch 3", history=None)
    >>> isinstance(err, FloatingPointError)
    True
    """

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history
