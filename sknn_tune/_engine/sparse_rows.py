"""Sparse inputs on the device.

A scipy CSR matrix (``TfidfVectorizer``, ``OneHotEncoder`` output) stays sparse on the device as
its three CSR arrays. Indexing it by a tensor of row numbers, as the trainer indexes its inputs
(``X[batch_rows]``), gathers those rows with fixed shapes (every row read through the widest row's
number of non-zeros, ``width``, the missing ones masked), so no host synchronisation happens
inside an epoch, and memory stays proportional to the non-zeros plus one batch. What the gather
returns depends on how sparse the matrix is:

* rows at most 1/``SPARSE_PRODUCT_MIN_RATIO`` full: a :class:`SparseBatch`, the rows' columns and
  values, which the first layer multiplies by gathering the weight rows it needs (the work scales
  with the non-zeros, as scikit-learn's sparse product does), and whose weight gradient it
  scatters back;
* denser rows (one-hot codes of a few columns): the rows dense, the same bits as the dense
  matrix's rows.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch

# The first layer multiplies sparse rows directly when the widest row holds at most this
# fraction's inverse of the columns; denser matrices are densified a batch of rows at a time.
SPARSE_PRODUCT_MIN_RATIO = 8
# Rows x width x units of gathered weights per chunk of a sparse product (bounds its memory).
SPARSE_PRODUCT_CHUNK = 2**23


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
        columns = self.col[position]
        if self.width * SPARSE_PRODUCT_MIN_RATIO <= self.shape[1]:
            return SparseBatch(columns, values, self.shape[1])
        dense = torch.zeros(*index.shape, self.shape[1], dtype=self.dtype, device=self.device)
        # Absent entries write 0 into column 0 of their row: add 0.0 there instead of writing.
        dense.scatter_add_(-1, columns, values)
        return dense


class SparseBatch:
    """Sparse rows ``(M, n, n_features)`` as ``columns`` and ``values`` ``(M, n, width)`` (absent
    entries: value 0 at column 0), for the first layer's products."""

    def __init__(self, columns, values, n_features):
        self.columns, self.values, self.n_features = columns, values, n_features
        self.shape = (*columns.shape[:-1], n_features)
        self.dtype, self.device = values.dtype, values.device

    def __getitem__(self, index):  # X_epoch[:, cols]: a batch of the epoch's rows
        return SparseBatch(self.columns[index], self.values[index], self.n_features)

    def expand(self, m, *_):
        """The same rows for ``m`` members (prediction broadcasts one input to every member)."""
        return SparseBatch(self.columns.expand(m, -1, -1), self.values.expand(m, -1, -1),
                           self.n_features)

    def dense(self):
        out = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return out.scatter_add_(-1, self.columns, self.values)

    def matmul(self, weight):
        """``rows @ weight`` for ``weight`` ``(M, n_features, units)``: ``(M, n, units)``."""
        m, n, width = self.columns.shape
        units = weight.shape[-1]
        chunk = max(1, SPARSE_PRODUCT_CHUNK // max(1, m * width * units))
        parts = []
        for start in range(0, n, chunk):
            columns = self.columns[:, start:start + chunk]
            rows = weight.gather(1, columns.reshape(m, -1, 1).expand(-1, -1, units))
            rows = rows.view(m, columns.shape[1], width, units)
            parts.append(torch.matmul(self.values[:, start:start + chunk, None, :], rows)[:, :, 0])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def weight_grad(self, g, out):
        """``rows^T @ g`` into ``out`` ``(M, n_features, units)`` (zeroed first)."""
        m, n, width = self.columns.shape
        units = g.shape[-1]
        out.zero_()
        contributions = (self.values[..., None] * g[:, :, None, :]).reshape(m, n * width, units)
        out.scatter_add_(1, self.columns.reshape(m, -1, 1).expand(-1, -1, units), contributions)
        return out


def dense(x):
    """``x`` as a dense tensor (a :class:`SparseBatch` made dense)."""
    return x.dense() if isinstance(x, SparseBatch) else x


def gather_rows(rows_source, index, workspace=None):
    """``rows_source[index]``: the rows ``index`` ``(M, n)`` picks, ``(M, n, d)``.

    A dense tensor gathers through ``index_select`` (the same bits as advanced indexing, at
    twice its speed for the trainer's epochs), into the front of ``workspace`` (a flat tensor
    of the source's dtype and device) when it is large enough: memory written again rather than
    fresh pages, which the kernel faults in one by one (an epoch's gather ran 3x slower into
    fresh memory). :class:`SparseRows` gathers through its own indexing.
    """
    if isinstance(rows_source, SparseRows):
        return rows_source[index]
    shape = (*index.shape, *rows_source.shape[1:])
    flat_index = index.reshape(-1)
    size = math.prod(shape)
    if (workspace is None or workspace.numel() < size or workspace.dtype != rows_source.dtype
            or workspace.device != rows_source.device):
        return rows_source.index_select(0, flat_index).view(shape)
    out = workspace[:size].view(shape)
    torch.index_select(rows_source, 0, flat_index, out=out.view(-1, *rows_source.shape[1:]))
    return out


def first_layer(x, weight, bias):
    """``bias + x @ weight`` for dense ``x`` or a :class:`SparseBatch`."""
    if isinstance(x, SparseBatch):
        return x.matmul(weight).add_(bias)
    return torch.baddbmm(bias, x, weight)


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
