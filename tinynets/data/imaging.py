"""Reading a photo and turning it into a network's input; the ImageNet class names.

Preprocessing for the TensorFlow-trained EfficientNet-Lite weights (``preprocess``)::

    any image file --Pillow--> RGB uint8 (H, W, 3)
        --resize to size x size, bicubic, whole image (no crop)--> (size, size, 3)
        --(x - 127) / 128, TF Lite's mean and std--> float32 in [-0.99, 1.0]
        --HWC to CHW, add a batch axis--> (1, 3, size, size)

``crop=True`` instead keeps the aspect ratio: the shorter side goes to ``size`` and the
centre ``size x size`` is cut out. Other weights want other constants: torchvision's
ImageNet models use ``mean=IMAGENET_MEAN, std=IMAGENET_STD`` on x / 255.

Pillow reads the file (it is an optional dependency: ``pip install "tinynets[pretrained]"``).
Grayscale, palette, CMYK and 16-bit images are converted to RGB; transparent images
are composited onto white; EXIF rotation is applied.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

__all__ = ["load_image", "preprocess", "imagenet_classes", "default_image_path",
           "TF_LITE_MEAN", "TF_LITE_STD", "IMAGENET_MEAN", "IMAGENET_STD"]

TF_LITE_MEAN, TF_LITE_STD = (127.0,) * 3, (128.0,) * 3                # on 0..255 values
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)               # torchvision's, on 0..255
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
MAX_PIXELS = 100_000_000          # Pillow's own bomb check warns at 89 M and refuses at 179 M


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "tinynets.data.imaging needs Pillow to read images: pip install pillow "
            "(or pip install \"tinynets[pretrained]\")") from None
    return Image, ImageOps


def default_image_path() -> Path:
    """matplotlib's sample photo ``grace_hopper.jpg`` (512 x 600), the classify default."""
    try:
        from matplotlib import cbook
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the default image is matplotlib's sample photo "
                                  "grace_hopper.jpg: pip install matplotlib, or give an "
                                  "image path") from None
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def load_image(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as RGB.

    Returns
    -------
    uint8 array (H, W, 3).

    Raises ``FileNotFoundError`` or ``ValueError`` with the file's name when it is
    missing, not an image Pillow can read, larger than ``MAX_PIXELS`` or empty.
    """
    Image, ImageOps = _pillow()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_image: no such file {str(path)!r}")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"load_image: {path.name} is {img.width} x {img.height} pixels, "
                                 f"more than the {MAX_PIXELS:,} this reader accepts")
            if img.width < 1 or img.height < 1:
                raise ValueError(f"load_image: {path.name} has no pixels ({img.width} x {img.height})")
            img = ImageOps.exif_transpose(img)          # phones store rotation in EXIF
            return np.asarray(_to_rgb(img), dtype=np.uint8)
    except (Image.UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
        raise ValueError(f"load_image: cannot read {path.name} as an image ({e})") from None


def _to_rgb(img):
    """RGB from any Pillow mode: alpha composited onto white, 16-bit scaled to 8-bit."""
    Image, _ = _pillow()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):              # 16/32-bit grayscale
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        img = Image.fromarray(np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255)
                              .astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def preprocess(image: Union[np.ndarray, str, Path], size: int = 224, crop: bool = False,
               mean: Sequence[float] = TF_LITE_MEAN, std: Sequence[float] = TF_LITE_STD,
               dtype=np.float32) -> np.ndarray:
    """An image (path, or uint8 (H, W, 3) RGB) as a network input (1, 3, size, size).

    Parameters
    ----------
    size : output height and width (bicubic resampling, Pillow's, antialiased)
    crop : False: the whole image squeezed to size x size; True: shorter side to
        ``size``, centre crop (aspect kept)
    mean, std : per-channel, on the 0..255 scale: x' = (x - mean) / std
    """
    Image, _ = _pillow()
    if isinstance(image, (str, Path)):
        image = load_image(image)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"preprocess: expected a uint8 RGB image of shape (H, W, 3), got "
                         f"{image.dtype} {image.shape}; load_image() converts any file")
    if size < 1:
        raise ValueError(f"preprocess: size must be positive, got {size}")
    img = Image.fromarray(image)
    if crop:
        w, h = img.size
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                         Image.Resampling.BICUBIC)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        img = img.crop((left, top, left + size, top + size))
    else:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(img, dtype=np.float32)                                # (size, size, 3)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=dtype)  # (1, 3, size, size)


def imagenet_classes(path: Optional[Union[str, Path]] = None) -> List[str]:
    """The 1000 ImageNet-1k class names in index order, the names torchvision's weights
    use: ``tinynets/data/imagenet_classes.txt``, package data read through
    ``importlib.resources`` (so it works from a wheel), or the file ``path``."""
    if path is None:
        source = resources.files(__package__) / "imagenet_classes.txt"
        where = "tinynets/data/imagenet_classes.txt"
        if not source.is_file():
            raise FileNotFoundError(f"imagenet_classes: the package data file {where} is "
                                    "missing; reinstall tinynets")
    else:
        source, where = Path(path), str(path)
        if not source.is_file():
            raise FileNotFoundError(f"imagenet_classes: no such file {where!r}")
    names = source.read_text(encoding="utf-8").splitlines()
    if len(names) != 1000:
        raise ValueError(f"imagenet_classes: {where} should list 1000 names, one per line; "
                         f"it has {len(names)}")
    return names
