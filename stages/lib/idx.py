"""The IDX format of (Fashion-)MNIST: file specs, verification and decoding."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
N_CLASSES = len(CLASS_NAMES)


class IdxError(ValueError):
    """Bytes that are not the IDX file they claim to be."""


@dataclass(frozen=True)
class IdxSpec:
    """What one decompressed IDX file must be."""

    name: str  # e.g. "train-images-idx3-ubyte"; sources hold it as name + ".gz" (or uncompressed)
    sha256: str
    count: int

    @property
    def is_images(self) -> bool:
        return "images" in self.name

    @property
    def magic(self) -> int:
        return IMAGES_MAGIC if self.is_images else LABELS_MAGIC

    @property
    def size(self) -> int:
        return 16 + self.count * 28 * 28 if self.is_images else 8 + self.count


# Checksums of the decompressed files: gzip bytes differ between mirrors, the content does not.
FASHION_MNIST = (
    IdxSpec("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 60000),
    IdxSpec("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60000),
    IdxSpec("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 10000),
    IdxSpec("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10000),
)


def verify(data: bytes, spec: IdxSpec) -> None:
    """Raise IdxError saying why `data` is not the file `spec` describes."""
    _check_header(data, spec.magic, spec.count)
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise IdxError(f"sha256 {digest[:16]}… does not match the expected {spec.sha256[:16]}…")


def decode(data: bytes) -> np.ndarray:
    """Decode IDX bytes into uint8 images (n, 28, 28) or labels (n,), checking the header."""
    if len(data) < 8:
        raise IdxError(f"{len(data)} bytes is too short for an IDX header")
    magic = struct.unpack(">I", data[:4])[0]
    if magic == IMAGES_MAGIC:
        count, rows, cols = _check_header(data, IMAGES_MAGIC, None)
        return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)
    if magic == LABELS_MAGIC:
        (count,) = _check_header(data, LABELS_MAGIC, None)
        labels = np.frombuffer(data, np.uint8, offset=8)
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise IdxError(f"label {int(labels.max())} is outside 0-{len(CLASS_NAMES) - 1}")
        return labels
    raise IdxError(f"magic number {magic} is neither {IMAGES_MAGIC} (images) nor {LABELS_MAGIC} (labels)")


def encode(array: np.ndarray) -> bytes:
    """IDX bytes for uint8 images (n, rows, cols) or labels (n,)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 3:
        return struct.pack(">IIII", IMAGES_MAGIC, *array.shape) + array.tobytes()
    if array.ndim == 1:
        return struct.pack(">II", LABELS_MAGIC, array.shape[0]) + array.tobytes()
    raise ValueError(f"IDX encodes 1-D labels or 3-D images, got shape {array.shape}")


def _check_header(data: bytes, magic: int, count: int | None) -> tuple[int, ...]:
    header_len = 16 if magic == IMAGES_MAGIC else 8
    if len(data) < header_len:
        raise IdxError(f"{len(data)} bytes is too short for an IDX header")
    found, *dims = struct.unpack(f">{header_len // 4}I", data[:header_len])
    if found != magic:
        raise IdxError(f"magic number {found}, expected {magic}")
    if count is not None and dims[0] != count:
        raise IdxError(f"header counts {dims[0]} items, expected {count}")
    if magic == IMAGES_MAGIC and dims[1:] != [28, 28]:
        raise IdxError(f"images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header_len + int(np.prod(dims))
    if len(data) != expected:
        raise IdxError(f"{len(data)} bytes, but the header promises {expected}")
    return tuple(dims)
