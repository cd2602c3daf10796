"""A6, visible: CrossEntropyLoss forward and backward, against PyTorch's numbers.

Run them with ``python -m pytest -m A6 -k cross_entropy``. The cases are PyTorch's
``nn.CrossEntropyLoss(label_smoothing=...)`` on float64 logits; the loss and the logits'
gradient must match to a relative error below 1e-8 (a correct float64 version is at 1e-15).
"""
import numpy as np
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A6, pytest.mark.numpy_only]

CASES = ("xent/00", "xent/01", "xent/04", "xent/05")


def test_cross_entropy_forward_pytorch(a6):
    """Without and with label smoothing 0.1, one image, two classes; and two facts: equal
    logits give log K whatever the smoothing, and adding a constant to every logit of a
    row changes nothing."""
    for c in a6.xent_cases(*CASES):
        loss = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)(c.logits, c.labels)
        a6.expect(f"CrossEntropyLoss forward, case {c.name}", loss, c.loss)
        shifted = c.logits + 50.0 * np.arange(1, len(c.logits) + 1)[:, None]
        a6.expect(f"CrossEntropyLoss forward of the logits plus a constant per row, case {c.name}",
                  tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)(shifted, c.labels), c.loss)
    for eps in (0.0, 0.25):
        a6.expect(f"CrossEntropyLoss(label_smoothing={eps}) of all-zero logits (3, 7): log 7",
                  tn.CrossEntropyLoss(label_smoothing=eps)(np.zeros((3, 7)), np.array([0, 6, 2])),
                  np.log(7.0))


def test_cross_entropy_backward_pytorch(a6, checks):
    """dlogits = dout * (p - q) / N, also for an upstream gradient dout = 0.7; and on
    random logits, against central differences of your forward."""
    for c in a6.xent_cases(*CASES, "xent/06"):
        ce = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        ce(c.logits, c.labels)
        a6.expect(f"CrossEntropyLoss backward(dout={c.dout}), case {c.name}",
                  ce.backward(c.dout), c.dlogits)
    rng = np.random.default_rng(7)
    z, y = rng.standard_normal((3, 4)), np.array([1, 0, 3])
    ce = tn.CrossEntropyLoss(label_smoothing=0.2)
    ce(z, y)
    num = checks.numerical_gradient(lambda: float(tn.CrossEntropyLoss(0.2)(z, y)), z,
                                    np.array(1.0), h=1e-5)
    checks.expect_close("CrossEntropyLoss(0.2) backward on random logits (3, 4) vs finite "
                        "differences of forward", ce.backward(), num, 1e-7)
