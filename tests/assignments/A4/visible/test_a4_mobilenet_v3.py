"""A4, visible: MobileNetV3 Large and Small assembled from the tables
(``tinynets/models/mobilenet_v3.py``): parameter and MAC counts equal to the reference
implementation's (``tests/fixtures/targets.json``), and torchvision's state_dict keys."""
import pytest

from tinynets.models.mobilenet_v3 import mobilenet_v3_small

pytestmark = [pytest.mark.A4]


def test_mobilenet_v3_counts_targets(a4):
    """Large 5,483,032 params / 216,589,760 MACs and Small 2,542,856 / 56,510,400 at 224."""
    rows = a4.v3_targets(1.0)
    assert len(rows) == 2
    for row in rows:
        a4.expect_counts(row)


def test_mobilenet_v3_torchvision_keys(a4):
    """MobileNetV3-Small: all 244 state_dict keys and shapes of torchvision's, in order."""
    a4.expect_keys("mobilenet_v3_small()", mobilenet_v3_small(),
                   a4.torchvision_entries("mobilenet_v3_small", ""))
