"""Data: the embedded digits and CIFAR-10, transforms, the loader, and photo reading.

``tinynets.data.imaging`` (photos for the pretrained models) needs Pillow and is imported
only when used.
"""
from .datasets import (DATASETS, ImageDataset, load_cifar10, load_dataset, load_digits,
                       stratified_split)
from .loader import DataLoader
from .transforms import Augment, resize_bilinear

__all__ = ["Augment", "DATASETS", "DataLoader", "ImageDataset", "load_cifar10", "load_dataset",
           "load_digits", "resize_bilinear", "stratified_split"]
