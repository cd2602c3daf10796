"""A6, hidden: CrossEntropyLoss on cases the student has not seen.

Never ships. PyTorch's other cases (logits of size 30), random inputs against finite
differences of the student's own forward, float32 in and out, the cache and no_grad.
"""
import numpy as np
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A6, pytest.mark.hidden, pytest.mark.numpy_only]


def test_cross_entropy_hidden_cases(a6):
    """Large logits (no overflow), float32 keeps float32, and the cache is (p, q)."""
    for c in a6.xent_cases("xent/02", "xent/03", "xent/06"):
        ce = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        a6.expect(f"CrossEntropyLoss forward, case {c.name}", ce(c.logits, c.labels), c.loss)
        a6.expect(f"CrossEntropyLoss backward, case {c.name}", ce.backward(c.dout), c.dlogits)
    c = a6.xent_cases("xent/03")[0]
    ce = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
    big = ce(c.logits * 100, c.labels)                    # logits up to ~10^4
    if not np.isfinite(big):
        raise AssertionError(f"CrossEntropyLoss of logits up to {np.abs(c.logits * 100).max():.0f} "
                             f"should be finite (use log_softmax), got {big}")
    cache = ce.cache
    if cache is None or len(cache) != 2 or any(np.shape(a) != c.logits.shape for a in cache):
        raise AssertionError("CrossEntropyLoss.forward should keep (p, q), two (N, K) arrays, "
                             "with self.keep(p, q)")
    p, q = cache
    a6.expect("the cached p (softmax of the logits): rows summing to 1", p.sum(axis=1),
              np.ones(len(p)))
    a6.expect("the cached q (smoothed targets) of case xent/03",
              q, np.where(np.arange(10) == c.labels[:, None], 0.91, 0.01))
    ce.backward()
    ce32 = tn.CrossEntropyLoss(label_smoothing=0.1)
    loss32 = ce32(c.logits.astype(np.float32), c.labels)
    d32 = ce32.backward()
    if np.asarray(loss32).dtype != np.float32 or d32.dtype != np.float32:
        raise AssertionError(f"float32 logits should give a float32 loss and gradient, got "
                             f"{np.asarray(loss32).dtype} and {d32.dtype}")
    a6.expect("CrossEntropyLoss in float32, case xent/03", d32, c.dlogits, tol=1e-4)
    with tn.no_grad():
        loss = tn.CrossEntropyLoss(label_smoothing=0.1)(c.logits, c.labels)
    a6.expect("CrossEntropyLoss forward under no_grad", loss, c.loss)


def test_cross_entropy_numerical_gradient(checks):
    """Random logits and smoothing (0, 0.3 and 1: a uniform target), dout 1.7: the
    backward against central differences of the forward."""
    rng = np.random.default_rng(606)
    for N, K, eps in [(4, 6, 0.0), (3, 5, 0.3), (2, 4, 1.0), (7, 3, 0.05)]:
        z = rng.standard_normal((N, K)) * 2
        y = rng.integers(0, K, N)
        ce = tn.CrossEntropyLoss(label_smoothing=eps)
        ce(z, y)
        dz = ce.backward(1.7)
        num = checks.numerical_gradient(lambda: 1.7 * float(tn.CrossEntropyLoss(eps)(z, y)),
                                        z, np.array(1.0), h=1e-5)
        checks.expect_close(f"CrossEntropyLoss(label_smoothing={eps}) backward(1.7) on random "
                            f"logits ({N}, {K}) vs finite differences", dz, num, 1e-7)
