"""A6, visible: CrossEntropyLoss forward and backward, against PyTorch's numbers.

Run them with ``python -m pytest -m A6 -k cross_entropy``. The cases are PyTorch's
``nn.CrossEntropyLoss(label_smoothing=...)`` on float64 logits; the loss and the logits'
gradient must match to a relative error below 1e-8 (a correct float64 version is at 1e-15).
"""
import pytest

import tinynets as tn

pytestmark = [pytest.mark.A6, pytest.mark.numpy_only]

CASES = ("xent/00", "xent/01", "xent/04", "xent/05")


def test_cross_entropy_forward_pytorch(a6):
    """Without and with label smoothing 0.1, one image, two classes."""
    for c in a6.xent_cases(*CASES):
        loss = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)(c.logits, c.labels)
        a6.expect(f"CrossEntropyLoss forward, case {c.name}", loss, c.loss)


def test_cross_entropy_backward_pytorch(a6):
    """dlogits = dout * (p - q) / N, also for an upstream gradient dout = 0.7."""
    for c in a6.xent_cases(*CASES, "xent/06"):
        ce = tn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        ce(c.logits, c.labels)
        a6.expect(f"CrossEntropyLoss backward(dout={c.dout}), case {c.name}",
                  ce.backward(c.dout), c.dlogits)
