"""How much accuracy `fmnist-predict`'s photo conversion costs, on test images made into photos.

Each of the first `--images` test images is blown up 5x, drawn as a tinted dark garment on a
white, wider ground and saved as JPEG (a product photo, as Fashion-MNIST was made from), then
converted back by predict's `to_fashion_mnist` and classified by both trained models. Prints
the accuracy on the original images and on the photos, and how often the two agree. Run from
the project root after `dvc repro`:

    python bench/predict_photos.py [--images 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import logging

import numpy as np
from PIL import Image

from stages.lib import paths
from stages.lib.idx import decode
from stages.lib.images import apply_normalization
from stages.lib.modelfile import load_model
from tools.predict import to_fashion_mnist

log = logging.getLogger("bench.predict_photos")


def as_photo(image: np.ndarray) -> Image.Image:
    """A 28x28 dataset image as a 220x180 JPEG photo of a tinted garment on white."""
    big = np.asarray(Image.fromarray(image).resize((140, 140), Image.Resampling.BICUBIC), np.float64)
    garment = np.stack([255 - big * k for k in (1.0, 0.85, 0.7)], axis=-1).clip(0, 255).astype(np.uint8)
    photo = Image.new("RGB", (220, 180), "white")
    photo.paste(Image.fromarray(garment), (30, 20))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return Image.open(buffer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="test images to render as photos")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    images = decode((paths.RAW / "t10k-images-idx3-ubyte").read_bytes())[: args.images]
    labels = decode((paths.RAW / "t10k-labels-idx1-ubyte").read_bytes())[: args.images]
    photos = np.stack([to_fashion_mnist(as_photo(image)) for image in images])
    stats = json.loads(paths.STATS.read_text())
    log.info(
        "mean absolute pixel difference, photo vs original: %.1f grey levels",
        np.abs(photos - images.astype(int)).mean(),
    )
    log.info("%-5s  %9s  %7s  %9s", "model", "originals", "photos", "agreement")
    for name in ("cnn", "mlp"):
        model = load_model(paths.model_file(name))
        original = model.predict(apply_normalization(images, stats), batch_size=500, verbose=0).argmax(axis=1)
        photo = model.predict(apply_normalization(photos, stats), batch_size=500, verbose=0).argmax(axis=1)
        log.info("%-5s  %9.3f  %7.3f  %9.3f", name, (original == labels).mean(), (photo == labels).mean(),
                 (original == photo).mean())  # fmt: skip


if __name__ == "__main__":
    main()
