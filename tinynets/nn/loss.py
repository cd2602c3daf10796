"""Softmax cross-entropy, the classification loss."""
from __future__ import annotations

import numpy as np

from .module import Module, check_array


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p = z - logsumexp(z), shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class CrossEntropyLoss(Module):
    """Mean cross-entropy of softmax(logits) against integer labels, ``torch.nn.CrossEntropyLoss``.

    With label smoothing eps the target is q = (1 - eps) * onehot + eps / K, so
    loss = mean_n( -sum_k q_nk log p_nk ) and dlogits = (p - q) / N.

    Shapes: logits (N, K), labels (N,) integers in [0, K) -> a scalar.
    Cache: p (N, K) and q (N, K).
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The mean smoothed cross-entropy of a batch; keeps (p, q) for ``backward``.

        Parameters
        ----------
        logits : (N, K) float array, z
        labels : (N,) integer array, y_n in [0, K) (checked before your code runs)

        Returns
        -------
        loss : a 0-d value of the logits' dtype (float32 in, float32 out),
            L = -(1/N) sum_n sum_k q_nk log p_nk, where
            log p = ``log_softmax(logits)`` (stable: never exp of a large logit) and
            q = eps / K everywhere plus (1 - eps) at [n, y_n], eps = ``self.label_smoothing``.

        Before returning, call ``self.keep(p, q)`` with p = exp(log p) (N, K) and q (N, K),
        both of the logits' dtype: ``backward`` gets them back with ``self.take()``.
        """
        check_array(self, logits, 2, what="logits")
        labels = np.asarray(labels)
        N, K = logits.shape
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (N,):
            raise TypeError(f"{self!r}: expected integer labels of shape ({N},), "
                            f"got dtype {labels.dtype} shape {labels.shape}")
        if N and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"{self!r}: labels must be in [0, {K}), got min {labels.min()} max {labels.max()}")
        ### BEGIN SOLUTION A6.cross_entropy
        logp = log_softmax(logits)                                   # (N, K)
        eps = self.label_smoothing
        q = np.full_like(logits, eps / K)
        q[np.arange(N), labels] += 1 - eps
        self.keep(np.exp(logp), q)
        return -(q * logp).sum() / logits.dtype.type(N)
        ### END SOLUTION

    def backward(self, dout=1.0) -> np.ndarray:
        """dlogits = (p - q) / N, times the upstream scalar ``dout``.

        Parameters
        ----------
        dout : float or 0-d array, dJ/dL for whatever J the loss feeds (1.0: J = L)

        Returns
        -------
        dlogits : (N, K) array of the logits' dtype, dout * (p - q) / N, with (p, q) from
            ``self.take()`` (the cache the last forward kept).
        """
        ### BEGIN SOLUTION A6.cross_entropy
        p, q = self.take()
        return (p - q) * (np.asarray(dout, dtype=p.dtype) / p.dtype.type(p.shape[0]))
        ### END SOLUTION
