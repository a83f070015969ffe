"""Learning-rate schedule registry: the lr multiplier for each member at an epoch.

Schedules run on the host once per epoch, vectorised over the members that use them:
``factor(epoch, decay, step, max_epochs, plateau_factor)`` with ``(m,)`` arrays, ``epoch`` counted
from 0. 'plateau' is driven by the trainer (it multiplies ``plateau_factor`` by ``decay`` after
``step`` epochs without improvement) and only reads that factor here.
"""

import numpy as np

SCHEDULES = {
    "constant": lambda epoch, decay, step, max_epochs, plateau: np.ones_like(decay),
    "step": lambda epoch, decay, step, max_epochs, plateau: decay ** np.floor(epoch / step),
    "exponential": lambda epoch, decay, step, max_epochs, plateau: decay**epoch,
    "inverse": lambda epoch, decay, step, max_epochs, plateau: 1.0 / (1.0 + decay * epoch),
    "cosine": lambda epoch, decay, step, max_epochs, plateau: 0.5
    * (1.0 + np.cos(np.pi * np.minimum(epoch, max_epochs) / max_epochs)),
    "plateau": lambda epoch, decay, step, max_epochs, plateau: plateau,
}


class _TempSchedule:  # TEMPORARY (revert before merge)
    def __init__(self, f, uses):
        self.f, self.uses_max_epochs = f, uses

    def __call__(self, *a):
        return self.f(*a)


SCHEDULES = {k: _TempSchedule(v, k == "cosine") for k, v in SCHEDULES.items()}
