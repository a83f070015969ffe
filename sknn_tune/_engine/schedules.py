"""Learning-rate schedule registry: the lr multiplier for each member at an epoch.

Schedules run on the host once per epoch. Each entry's ``factor`` takes one
:class:`ScheduleInputs` of ``(m,)`` arrays (``epoch`` counted from 0) and returns the ``(m,)``
multipliers, so a schedule that reads a new input needs no change where the trainer calls it.
'plateau' and 'adaptive' are driven by the trainer (it multiplies ``plateau`` by ``decay``: after
``step`` epochs without improvement, and where early stopping or convergence would stop the
member) and only read that factor here. 'invscaling' is scikit-learn's MLP's: the lr of the
first epoch of a fit, then divided by ``(rows trained on + 1) ** decay``.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class ScheduleInputs(NamedTuple):
    """What a schedule may read, one ``(m,)`` float array each."""

    epoch: np.ndarray  # epochs trained so far (the coming epoch, counted from 0)
    decay: np.ndarray  # ``lr_decay``
    step: np.ndarray  # ``lr_step``
    max_epochs: np.ndarray
    plateau: np.ndarray  # the reduce-on-plateau factor the trainer keeps
    since_start: np.ndarray  # epochs since the schedule started (this fit's, for a warm fit)
    rows_seen: np.ndarray  # training rows of every epoch trained so far


class Schedule(NamedTuple):
    """One registry entry.

    ``uses_max_epochs`` / ``uses_plateau`` say whether the factor depends on ``max_epochs`` or on
    the plateau factor (a search that changes ``max_epochs`` cannot continue such a member).
    """

    factor: Callable  # ScheduleInputs -> (m,) lr multipliers
    doc: str  # one line for option lists in docstrings
    uses_max_epochs: bool = False
    uses_plateau: bool = False
    # the trainer multiplies the plateau factor by lr_decay where patience runs out, instead of
    # stopping, until the lr is at most ADAPTIVE_MIN_LR (scikit-learn's 'adaptive')
    adaptive: bool = False


def _invscaling(s):
    return np.where(s.since_start == 0, 1.0, 1.0 / (s.rows_seen + 1.0) ** s.decay)


def _cosine(s):
    return 0.5 * (1.0 + np.cos(np.pi * np.minimum(s.epoch, s.max_epochs) / s.max_epochs))


SCHEDULES = {
    "constant": Schedule(lambda s: np.ones_like(s.decay), "the same lr every epoch"),
    "step": Schedule(lambda s: s.decay ** np.floor(s.epoch / s.step),
                     "times lr_decay every lr_step epochs"),
    "exponential": Schedule(lambda s: s.decay**s.epoch, "times lr_decay every epoch"),
    "inverse": Schedule(lambda s: 1.0 / (1.0 + s.decay * s.epoch),
                        "lr / (1 + lr_decay * epoch)"),
    "cosine": Schedule(_cosine, "cosine annealing to zero at max_epochs", uses_max_epochs=True),
    "plateau": Schedule(lambda s: s.plateau,
                        "times lr_decay after lr_step epochs without improvement",
                        uses_plateau=True),
    "invscaling": Schedule(_invscaling, "lr / (rows trained on + 1) ** lr_decay"),
    "adaptive": Schedule(lambda s: s.plateau,
                         "times lr_decay each time early stopping or convergence would stop, "
                         "until lr <= 1e-6", uses_plateau=True, adaptive=True),
}

