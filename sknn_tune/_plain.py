"""Objects as plain data that ``torch.load(..., weights_only=True)`` reads, and back.

Plain data is tensors, str, int, float, bool, None, and lists, tuples and dicts of plain data: what
the weights-only unpickler reads without importing or calling anything. :func:`to_plain` keeps those
(tensors moved to the CPU) and writes the few other types a fitted estimator holds as tagged dicts:
numpy arrays and scalars, torch dtypes and devices, pandas DataFrames, and the dataclasses of
sknn_tune itself (field by field, so that a class that gains a field with a default still reads
older files). :func:`from_plain` rebuilds them, and only into those types: a file names no code to run.
"""

import dataclasses
import sys

import numpy as np
import pandas as pd
import torch

TAG = "__sknn_tune__"  # the key that marks a dict as an encoded object, not plain data
_PLAIN_SCALARS = (bool, int, float, str, type(None))
# numpy dtypes that travel as tensors; arrays of strings and objects travel as lists of items
_TENSOR_DTYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32,
    np.float64, np.complex64, np.complex128))
_PACKAGE = __name__.partition(".")[0]


class NotPlainDataError(TypeError):
    """``to_plain`` met a value it cannot write as plain data, at ``where``."""

    def __init__(self, where, value):
        self.where = where
        self.value = value
        kind = type(value)
        super().__init__(f"{where} is a {kind.__module__}.{kind.__qualname__}, which is not plain "
                         "data")


def to_plain(value, where="value"):
    """``value`` as plain data; ``where`` names it in a :class:`NotPlainDataError`."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return to_plain(value.item(), where)  # np.float64, np.str_, np.bool_, ...
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()  # a clone: a view would save its whole storage
    if kind in (list, tuple):
        items = [to_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if kind is list else tuple(items)
    if kind is dict:
        return {to_plain(key, f"{where} key"): to_plain(item, f"{where}[{key!r}]")
                for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _array_to_plain(value, where)
    if isinstance(value, torch.dtype):
        return {TAG: "torch.dtype", "name": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {TAG: "torch.device", "name": str(value)}
    if kind is pd.DataFrame:
        default_index = value.index.equals(pd.RangeIndex(len(value)))
        return {TAG: "DataFrame",
                "columns": [(to_plain(name, f"{where} column"),
                             _array_to_plain(value[name].to_numpy(), f"{where}[{name!r}]"))
                            for name in value.columns],
                "index": None if default_index else _array_to_plain(value.index.to_numpy(),
                                                                    f"{where}.index")}
    if dataclasses.is_dataclass(kind) and kind.__module__.partition(".")[0] == _PACKAGE:
        return {TAG: "dataclass", "class": f"{kind.__module__}:{kind.__qualname__}",
                "fields": {field.name: to_plain(getattr(value, field.name),
                                                f"{where}.{field.name}")
                           for field in dataclasses.fields(value)}}
    raise NotPlainDataError(where, value)


def _array_to_plain(array, where):
    if array.dtype in _TENSOR_DTYPES and array.dtype.isnative:
        return {TAG: "ndarray", "dtype": array.dtype.str,
                "data": torch.from_numpy(array.copy(order="C"))}
    if array.dtype.kind in "OUS":
        items = [to_plain(item, f"{where}[{i}]") for i, item in enumerate(array.ravel().tolist())]
        return {TAG: "ndarray", "dtype": array.dtype.str, "shape": array.shape, "items": items}
    raise NotPlainDataError(where, array)


def from_plain(value):
    """The object :func:`to_plain` wrote as ``value``.

    Raises
    ------
    ValueError
        When ``value`` holds a tag this module does not write, or names a class outside
        sknn_tune's dataclasses.
    """
    kind = type(value)
    if kind in _PLAIN_SCALARS or isinstance(value, torch.Tensor):
        return value
    if kind in (list, tuple):
        items = [from_plain(item) for item in value]
        return items if kind is list else tuple(items)
    if kind is not dict:
        raise ValueError(f"unexpected {kind.__qualname__} in plain data")
    if TAG not in value:
        return {from_plain(key): from_plain(item) for key, item in value.items()}
    decode = _DECODERS.get(value[TAG])
    if decode is None:
        raise ValueError(f"unknown encoded type {value[TAG]!r}")
    return decode(value)


def _array_from_plain(value):
    dtype = np.dtype(value["dtype"])
    if "data" in value:
        return value["data"].cpu().numpy().astype(dtype, copy=False)
    array = np.empty(len(value["items"]), dtype=dtype)
    for i, item in enumerate(value["items"]):  # item by item: object items may be sequences
        array[i] = from_plain(item)
    return array.reshape(value["shape"])


def _dtype_from_plain(value):
    dtype = getattr(torch, value["name"], None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{value['name']!r} is not a torch dtype")
    return dtype


def _frame_from_plain(value):
    columns = {from_plain(name): _array_from_plain(data) for name, data in value["columns"]}
    index = None if value["index"] is None else _array_from_plain(value["index"])
    return pd.DataFrame(columns, index=index)


def _dataclass_from_plain(value):
    module, _, qualname = value["class"].partition(":")
    # Only modules already imported: reading a file imports nothing.
    cls = sys.modules.get(module) if module.partition(".")[0] == _PACKAGE else None
    if cls is None:
        raise ValueError(f"{value['class']!r} is not a class of {_PACKAGE}")
    for name in qualname.split("."):
        cls = getattr(cls, name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"{value['class']!r} is not a dataclass of {_PACKAGE}")
    return cls(**{name: from_plain(item) for name, item in value["fields"].items()})


_DECODERS = {
    "ndarray": _array_from_plain,
    "torch.dtype": _dtype_from_plain,
    "torch.device": lambda value: torch.device(value["name"]),
    "DataFrame": _frame_from_plain,
    "dataclass": _dataclass_from_plain,
}
