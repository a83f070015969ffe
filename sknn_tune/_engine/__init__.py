"""The stacked-member training engine: tensors in, trained members out. Knows nothing of sklearn."""

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .losses import LOSSES
from .network import Architecture
from .optimizers import OPTIMIZERS
from .schedules import SCHEDULES
from .trainer import MemberConfig, MemberData, StackConfig, StackedTrainer

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "Architecture",
    "MemberConfig",
    "MemberData",
    "StackConfig",
    "StackedTrainer",
]
