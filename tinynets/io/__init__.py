"""Checkpoint files, read without torch and without running code, and written atomically.

* ``checkpoint``: ``load_checkpoint`` (PyTorch zip and legacy, safetensors, npz) and
  ``save_checkpoint`` (npz, safetensors);
* ``torch_pickle``, ``safe_pickle``: the restricted unpicklers;
* ``keymaps``: timm and lukemelas key names to torchvision's;
* ``files``: atomic writes, the npz writer, file digests;
* ``limits``: sizes checked against the file before reading (hostile files).
"""
from .checkpoint import CheckpointError, UnsafeCheckpointError, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_checkpoint", "save_checkpoint"]
