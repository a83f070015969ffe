"""The stacked-member training engine: tensors in, trained members out. Knows nothing of sklearn."""

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import Architecture
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES, Schedule, ScheduleInputs
from .trainer import (
    HISTORY_COLUMNS,
    MemberConfig,
    MemberData,
    MemberProgress,
    MemberTensors,
    StackConfig,
    StackedTrainer,
    sharing_key,
)

__all__ = [
    "ACTIVATIONS",
    "HISTORY_COLUMNS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Architecture",
    "MemberConfig",
    "MemberData",
    "MemberProgress",
    "MemberTensors",
    "Schedule",
    "ScheduleInputs",
    "StackConfig",
    "StackedTrainer",
    "sharing_key",
]
