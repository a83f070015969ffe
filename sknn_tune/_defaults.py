"""The numbers the estimators' ``'auto'`` settings stand for, where more than one module reads them.

It imports nothing, so every module of the package can import it: the estimators (``_base``) and
the exports (``interop``) read the same value without importing each other.
"""

__all__ = ["AUTO_BATCH_SIZE"]

# batch_size='auto': scikit-learn's MLP's min(200, n_samples), the cap applied where the rows are known.
AUTO_BATCH_SIZE = 200
