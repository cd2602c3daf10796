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
        check_array(self, logits, 2, what="logits")
        labels = np.asarray(labels)
        N, K = logits.shape
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (N,):
            raise TypeError(f"{self!r}: expected integer labels of shape ({N},), "
                            f"got dtype {labels.dtype} shape {labels.shape}")
        if N and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"{self!r}: labels must be in [0, {K}), got min {labels.min()} max {labels.max()}")
        logp = log_softmax(logits)                                   # (N, K)
        eps = self.label_smoothing
        q = np.full_like(logits, eps / K)
        q[np.arange(N), labels] += 1 - eps
        self.keep(np.exp(logp), q)
        return -(q * logp).sum() / logits.dtype.type(N)

    def backward(self, dout=1.0) -> np.ndarray:
        """dlogits = (softmax - q) / N, times the upstream scalar ``dout``."""
        p, q = self.take()
        return (p - q) * (np.asarray(dout, dtype=p.dtype) / p.dtype.type(p.shape[0]))
