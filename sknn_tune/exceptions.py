"""Exceptions raised by sknn_tune."""

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite.

    Raised instead of returning a model that predicts NaN. The per-epoch history up to the
    divergence is kept in the ``history`` attribute so the run can still be inspected and plotted.

    Parameters
    ----------
    message : str
        What diverged, at which epoch, with which hyperparameters.
    history : pandas.DataFrame or None, default=None
        The estimator's ``history_`` up to and including the epoch that diverged.

    Attributes
    ----------
    history : pandas.DataFrame or None
        The ``history`` passed in; :func:`~sknn_tune.plot_history` draws it.

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
