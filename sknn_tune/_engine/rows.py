"""Sparse inputs on the device, densified a batch of rows at a time.

A scipy CSR matrix (``TfidfVectorizer``, ``OneHotEncoder`` output) stays sparse on the device as
its three CSR arrays; indexing it by a tensor of row numbers, as the trainer indexes its inputs
(``X[batch_rows]``), returns those rows dense. Memory stays proportional to the non-zeros plus
one batch. The gather has fixed shapes (every row is read through the widest row's number of
non-zeros, ``width``, the missing ones masked), so it needs no host synchronisation inside an
epoch, and the dense rows it gives are the same bits as the dense matrix's rows.
"""

import numpy as np
import scipy.sparse as sp
import torch


class SparseRows:
    """A CSR matrix on ``device``, indexed by row tensors into dense rows.

    ``rows[index]`` with an integer tensor ``index`` of any shape is ``index.shape + (n_features,)``
    dense; ``rows[None, start:stop]`` is the ``(1, stop - start, n_features)`` block of those rows
    (what prediction reads).
    """

    def __init__(self, matrix, dtype, device):
        matrix = sp.csr_matrix(matrix)
        matrix.sum_duplicates()  # one entry per column: the scatter below writes, never sums
        self.shape = matrix.shape
        self.dtype = dtype
        self.device = torch.device(device)
        counts = np.diff(matrix.indptr)
        self.width = int(counts.max()) if len(counts) else 0
        self.crow = torch.as_tensor(matrix.indptr.astype(np.int64), device=device)
        # One padding entry, so that masked positions of an empty matrix still index something.
        self.col = torch.as_tensor(np.append(matrix.indices, 0).astype(np.int64), device=device)
        self.values = torch.as_tensor(np.append(matrix.data, 0), dtype=dtype, device=device)

    def element_size(self):
        return torch.empty(0, dtype=self.dtype).element_size()

    def __getitem__(self, index):
        if isinstance(index, tuple):  # rows[None, start:stop]
            none, block = index
            if none is not None or not isinstance(block, slice):
                raise IndexError(f"SparseRows takes a row tensor or [None, slice]; got {index!r}")
            start, stop, _ = block.indices(self.shape[0])
            index = torch.arange(start, stop, device=self.device)[None]
        if not isinstance(index, torch.Tensor):
            index = torch.as_tensor(index, device=self.device)
        start = self.crow[index]
        length = self.crow[index + 1] - start
        k = torch.arange(self.width, device=self.device)
        present = k < length[..., None]
        position = torch.where(present, start[..., None] + k, self.values.shape[0] - 1)
        values = torch.where(present, self.values[position], 0.0)
        dense = torch.zeros(*index.shape, self.shape[1], dtype=self.dtype, device=self.device)
        # Absent entries write 0 into column 0 of their row: add 0.0 there instead of writing.
        dense.scatter_add_(-1, self.col[position], values)
        return dense


def as_rows(array, dtype, device):
    """``array`` as the trainer's input: a dense tensor, or :class:`SparseRows` if sparse."""
    if sp.issparse(array):
        return SparseRows(array, dtype, device)
    # torch cannot wrap read-only memory (memory-mapped inputs); copy those.
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


def stack_rows(arrays, dtype, device):
    """The blocks ``arrays`` one below the other, as :func:`as_rows` gives them."""
    if any(sp.issparse(array) for array in arrays):
        return SparseRows(sp.vstack(arrays, format="csr"), dtype, device)
    return torch.cat([as_rows(array, dtype, device) for array in arrays])
