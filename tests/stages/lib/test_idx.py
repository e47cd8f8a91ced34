import struct

import numpy as np
import pytest

from stages.lib.idx import FASHION_MNIST, IdxError, decode, encode, verify
from tests.conftest import synthetic_split


def test_encode_decode_round_trip():
    images, labels = synthetic_split(30, seed=0)
    assert np.array_equal(decode(encode(images)), images)
    assert np.array_equal(decode(encode(labels)), labels)


def test_verify_accepts_the_spec_and_rejects_other_bytes(tiny_idx):
    spec = tiny_idx.specs[0]
    data = encode(tiny_idx.arrays[spec.name])
    verify(data, spec)
    flipped = bytearray(data)
    flipped[100] ^= 0xFF
    with pytest.raises(IdxError, match="sha256"):
        verify(bytes(flipped), spec)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: struct.pack(">I", 1234) + d[4:], "magic number 1234"),
        (lambda d: d[:-5], "header promises"),
        (lambda d: d[:10], "too short"),
        (lambda d: d[:4] + struct.pack(">I", 29) + d[8:], "header counts 29"),
    ],
)
def test_verify_names_what_is_wrong(tiny_idx, mutate, reason):
    spec = tiny_idx.specs[0]
    with pytest.raises(IdxError, match=reason):
        verify(mutate(encode(tiny_idx.arrays[spec.name])), spec)


def test_decode_rejects_labels_outside_0_to_9():
    with pytest.raises(IdxError, match="label 12 is outside 0-9"):
        decode(encode(np.array([1, 12, 3], np.uint8)))


def test_real_specs_match_the_published_sizes():
    sizes = {spec.name: spec.size for spec in FASHION_MNIST}
    assert sizes == {
        "train-images-idx3-ubyte": 47040016,
        "train-labels-idx1-ubyte": 60008,
        "t10k-images-idx3-ubyte": 7840016,
        "t10k-labels-idx1-ubyte": 10008,
    }
