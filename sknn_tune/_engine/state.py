"""The per-member state of a stack: every field holds one row per member, so selecting,
stacking and moving members are written once over the declared fields (a field of another kind
fails loudly). :class:`~.trainer.StackedTrainer` holds one :class:`MemberTensors` (device state)
and one :class:`MemberProgress` (the host's per-member counters)."""

from dataclasses import dataclass, fields

import numpy as np
import torch

__all__ = ["MemberProgress", "MemberTensors"]


class _MemberRows:
    """Dataclass mixin: ``select``, ``concat`` and ``as_dict`` over every declared field."""

    @staticmethod
    def _take(value, indices):
        raise NotImplementedError

    @staticmethod
    def _join(values):
        raise NotImplementedError

    def select(self, indices):
        """The members at ``indices``, in that order, sharing no memory with ``self``."""
        return type(self)(**{f.name: self._take(getattr(self, f.name), indices)
                             for f in fields(self)})

    @classmethod
    def concat(cls, parts):
        """The members of ``parts``, in order."""
        return cls(**{f.name: cls._join([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    def as_dict(self):
        """``{field name: value}``, the values not copied."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values):
        """The inverse of :meth:`as_dict`; a missing field raises ``KeyError``."""
        return cls(**{f.name: values[f.name] for f in fields(cls)})


def _per_tensor(value, function):
    """``function`` applied to a tensor, or to every tensor of a dict of tensors."""
    if isinstance(value, torch.Tensor):
        return function(value)
    if isinstance(value, dict):
        return {name: function(tensor) for name, tensor in value.items()}
    raise TypeError(f"member state holds a {type(value).__name__}; expected a tensor or a dict "
                    "of tensors")


@dataclass
class MemberTensors(_MemberRows):
    """Device state, first dimension the member: ``M`` rows each."""

    seeds: torch.Tensor  # (M,) int64, each member's seed modulo 2**32
    params: torch.Tensor  # (M, P) the live flat parameters (see Architecture.row_width)
    buffers: torch.Tensor  # (M, B) BatchNorm running statistics (B = 0 without BatchNorm)
    best_params: torch.Tensor  # (M, P) the parameters of the best validation epoch
    best_buffers: torch.Tensor  # (M, B)
    steps: torch.Tensor  # (M, 1) float32 update counts, as torch.optim keeps them
    state: dict  # optimizer state: name -> (M, P), OPTIMIZERS[...].state_names

    @staticmethod
    def _take(value, indices):
        if isinstance(indices, slice):  # one member (see StackedTrainer.select): a view, copied
            return _per_tensor(value, lambda t: t[indices].clone())
        return _per_tensor(value, lambda t: t[torch.as_tensor(indices, device=t.device)].clone())

    @staticmethod
    def _join(values):
        if isinstance(values[0], dict):
            return {name: torch.cat([v[name] for v in values]) for name in values[0]}
        return torch.cat(values)

    def to(self, device, dtype=None):
        """The same state on ``device``, the network's state in ``dtype`` when given (tensors
        already there are not copied; seeds and step counts keep their own dtypes)."""
        def move(name, tensor):
            if dtype is None or name in ("seeds", "steps"):
                return tensor.to(device)
            return tensor.to(device, dtype)

        return type(self)(**{name: _per_tensor(value, lambda t, name=name: move(name, t))
                             for name, value in self.as_dict().items()})


@dataclass
class MemberProgress(_MemberRows):
    """Host state of training, early stopping and the plateau schedule: ``(M,)`` arrays."""

    epochs_done: np.ndarray  # int64
    stopped: np.ndarray  # bool: stopped early
    diverged: np.ndarray  # bool: frozen since its loss blew up
    first_loss: np.ndarray  # float: the first epoch's training loss (NaN before it)
    best_value: np.ndarray  # float: the best watched validation value (lower is better)
    best_epoch: np.ndarray  # int64: the epoch of best_value (0: none yet)
    wait: np.ndarray  # int64: epochs since the best (early stopping's patience counter)
    plateau_factor: np.ndarray  # float: the reduce-on-plateau lr multiplier
    plateau_best: np.ndarray  # float: the best watched value for the plateau schedule
    plateau_wait: np.ndarray  # int64: epochs since plateau_best improved
    loss_best: np.ndarray  # float: the best training loss (convergence without validation)
    loss_wait: np.ndarray  # int64: epochs since it last improved by tol
    schedule_start: np.ndarray  # int64: the epoch a max_epochs schedule's horizon began
    rows_seen: np.ndarray  # int64: training rows of every epoch trained ('invscaling')
    lbfgs_results: np.ndarray  # object: how L-BFGS ended (._lbfgs.LbfgsResult), None before

    @classmethod
    def fresh(cls, m):
        """``m`` members that have not trained yet."""
        return cls(
            epochs_done=np.zeros(m, dtype=np.int64), stopped=np.zeros(m, dtype=bool),
            diverged=np.zeros(m, dtype=bool), first_loss=np.full(m, np.nan),
            best_value=np.full(m, np.inf), best_epoch=np.zeros(m, dtype=np.int64),
            wait=np.zeros(m, dtype=np.int64), plateau_factor=np.ones(m),
            plateau_best=np.full(m, np.inf), plateau_wait=np.zeros(m, dtype=np.int64),
            loss_best=np.full(m, np.inf), loss_wait=np.zeros(m, dtype=np.int64),
            schedule_start=np.zeros(m, dtype=np.int64), rows_seen=np.zeros(m, dtype=np.int64),
            lbfgs_results=np.full(m, None, dtype=object))

    @staticmethod
    def _take(value, indices):
        return value[indices if isinstance(indices, slice) else np.asarray(indices)].copy()

    @staticmethod
    def _join(values):
        return np.concatenate(values)


def _delegate(part, name):
    """A read-write attribute of the trainer that is field ``name`` of its ``part``."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value),
                    doc=f"``{part}.{name}``, read and written in place.")
