"""predict: classify image files with the trained CNN (or MLP).

Not a DVC stage: it uses what the stages made, `models/<model>.keras` and the normalisation in
`data/processed/stats.json`, so run `dvc repro` (or `dvc pull`) first. Each image is converted
the way Fashion-MNIST itself was made from product photos: grey, light garment on a dark ground
(negated when the photo's ground is light), trimmed to the garment, longest side scaled to 28 px
and centred on a 28x28 canvas.

    fmnist-predict shirt.jpg boot.png [--model mlp] [--top 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from stages.lib import paths
from stages.lib.files import read_json
from stages.lib.idx import CLASS_NAMES
from stages.lib.images import apply_normalization
from stages.lib.modelfile import load_model, read_model_about
from stages.lib.scoring import softmax
from stages.lib.stage import StageError, run_main
from tools.checkout import project_root

SIZE = 28
# Pixels within this distance of the ground colour count as ground when trimming: JPEG noise
# and soft shadows around a product should not widen its box.
GROUND_TOLERANCE = 24
# Larger files are refused unread (--max-pixels raises it): 100 Mpx of RGB is 300 MB decoded.
MAX_PIXELS = 100_000_000
# Big images are reduced to about this many pixels on their long side while they are read.
WORKING_SIZE = 1024
log = logging.getLogger("tools.predict")
# read_image checks the size itself, against --max-pixels, before decoding anything; Pillow's own
# check would warn from 89 Mpx and fail with a traceback from 179 Mpx.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class Prediction:
    file: str
    model: str
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image file, or say in one line why it cannot be used.

    Above `max_pixels` it is refused before decoding. A large one is reduced while it is read
    (JPEG decodes at 1/2, 1/4 or 1/8 scale; others are reduced right after), to about
    WORKING_SIZE px: enough to find the garment, which ends up 28 px tall anyway.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                size = f"{width}x{height} is {width * height / 1e6:.0f} Mpx"
                raise StageError(f"{path}: {size}, above the limit of {max_pixels / 1e6:.0f} Mpx; raise it with "
                                 "--max-pixels if the file is trusted")  # fmt: skip
            if getattr(image, "is_animated", False):
                log.warning("%s: animated, %d frames: the first frame is used", path, image.n_frames)
            if image.format == "JPEG":
                image.draft(image.mode, (WORKING_SIZE, WORKING_SIZE))
            image.load()
            factor = max(image.size) // WORKING_SIZE
            image = image.reduce(factor) if factor > 1 else image.copy()
        return ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
    except FileNotFoundError:
        raise StageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise StageError(f"{path}: is a directory; give image files (PNG, JPEG, ...)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = exc if not isinstance(exc, UnidentifiedImageError) else "not a format Pillow can read"
        raise StageError(f"{path}: not an image ({reason}); give PNG, JPEG or another image file") from None


def to_grey(image: Image.Image) -> Image.Image:
    """8-bit grey ("L"), from any mode Pillow reads, as the 8-bit equivalent of the image would be.

    Pillow's own convert("L") clips 16-bit and 32-bit images to 255 instead of scaling them (a
    16-bit scan becomes a two-level silhouette). Transparent parts become white: product
    cut-outs are shown on white, and the ground is taken from the image's border.
    """
    if image.mode.startswith("I;16"):
        return Image.fromarray(_levels(np.asarray(image, dtype=np.float64) / 257))
    if image.mode in ("I", "F"):
        # No bit depth is stored with these: 32-bit ints holding 16-bit samples (PNG), floats in
        # [0, 1] or in 8-bit levels. The range tells which.
        a = np.asarray(image, dtype=np.float64)
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 if image.mode == "F" and top <= 1.0 else 1.0 if top <= 255 else 1 / 257
        return Image.fromarray(_levels(a * scale))
    if image.mode == "YCbCr":
        return image.getchannel("Y")  # the grey itself: converting via RGB rounds twice
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("L")


def _levels(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_fashion_mnist(image: Image.Image) -> np.ndarray:
    """A (28, 28) uint8 image as in Fashion-MNIST: light garment on a black ground.

    An image that is already 28x28 is only made grey (and negated when its ground is light):
    it is in the dataset's format, and trimming or moving it would not make it more so. A blank
    image (one grey level, or all transparent) has no garment to classify: StageError.
    """
    grey = to_grey(image)
    if _ground(grey) > 127:
        grey = ImageOps.invert(grey)
    ground = _ground(grey)
    diff = ImageChops.difference(grey, Image.new("L", grey.size, ground))
    box = diff.point(lambda v: 255 if v > GROUND_TOLERANCE else 0).getbbox()
    if box is None:
        raise StageError("no garment found: the image is blank (or fully transparent)")
    if grey.size == (SIZE, SIZE):
        return np.array(grey, dtype=np.uint8)
    grey = grey.crop(box)
    scale = SIZE / max(grey.size)
    fitted = grey.resize(
        (max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.LANCZOS
    )
    canvas = Image.new("L", (SIZE, SIZE), ground)
    # An odd leftover puts the extra pixel before the garment, as in 98% of the dataset's images.
    canvas.paste(fitted, ((SIZE - fitted.width + 1) // 2, (SIZE - fitted.height + 1) // 2))
    pixels = np.asarray(canvas, dtype=np.int16) - ground  # the dataset's ground is 0
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _ground(grey: Image.Image) -> int:
    """The ground's grey level: the median of the outermost ring of pixels."""
    a = np.asarray(grey)
    ring = np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])
    return int(np.median(ring))


def top_classes(probs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """The `k` most probable classes of each row, most probable first."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(CLASS_NAMES[c], float(row[c])) for c in idx] for row, idx in zip(probs, order, strict=True)]


def _converted(path: Path, max_pixels: int) -> np.ndarray:
    try:
        return to_fashion_mnist(read_image(path, max_pixels))
    except StageError as exc:
        message = str(exc)
        raise StageError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def predict(
    files: list[Path],
    model_name: str,
    top: int,
    root: Path | None = None,
    max_pixels: int = MAX_PIXELS,
    model_file: Path | None = None,
) -> list[Prediction]:
    """Classify `files` with `model_file`, by default `models/<model_name>.keras` of the checkout;
    every file is checked before the model loads.

    The input normalisation is the model file's own (written by its training stage); a model
    without it uses the checkout's data/processed/stats.json.
    """
    images = np.stack([_converted(f, max_pixels) for f in files])
    if model_file is None:
        root = root or project_root()
        model_file = paths.in_checkout(paths.model_file(model_name), root)
    about = read_model_about(model_file)
    stats = about["input"] if about else read_json(paths.in_checkout(paths.STATS, root or project_root()))
    model = load_model(model_file)  # TensorFlow starts here, once the inputs are known good
    logits = model.predict(apply_normalization(images, stats), batch_size=256, verbose=0)
    probs = softmax(logits.astype(np.float64))
    return [Prediction(str(f), model_name, t) for f, t in zip(files, top_classes(probs, top), strict=True)]


def render_text(predictions: list[Prediction]) -> str:
    return "".join(f"{p.file}: " + ", ".join(f"{name} {prob:.1%}" for name, prob in p.top) + "\n" for p in predictions)


def render_json(predictions: list[Prediction]) -> str:
    rows = [
        {
            "file": p.file,
            "model": p.model,
            "predictions": [
                {"class": name, "label": CLASS_NAMES.index(name), "probability": round(prob, 6)} for name, prob in p.top
            ],
        }
        for p in predictions
    ]
    return json.dumps(rows, indent=2) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fmnist-predict", description="Classify garment images with the trained Fashion-MNIST model."
    )
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG or other image files, any size, colour or grey")
    parser.add_argument("--model", choices=("cnn", "mlp"), default="cnn", help="which trained model (default: cnn)")
    parser.add_argument(
        "--model-file",
        type=Path,
        help="a trained .keras file instead, e.g. one fetched by `dvc artifacts get`; no checkout needed",
    )
    parser.add_argument(
        "--top", type=_top, default=3, help=f"classes shown per image, 1-{len(CLASS_NAMES)} (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of one line per image")
    parser.add_argument(
        "--max-pixels", type=int, default=MAX_PIXELS, help=f"larger images are refused (default {MAX_PIXELS:,})"
    )
    args = parser.parse_args(argv)
    if args.model_file:
        root, model = None, args.model_file
        if not model.is_file():
            raise StageError(f"{model} is missing: give the path of a .keras file")
    else:
        root = project_root()
        model = paths.in_checkout(paths.model_file(args.model), root)
        if not model.exists():  # before reading any image: the likeliest mistake
            path = model.relative_to(root)
            stage = paths.training_stage(args.model)
            raise StageError(f"{path} is missing: run `dvc repro {stage}` (or `dvc pull {path}`)")
    name = model.stem if args.model_file else args.model
    predictions = predict(args.images, name, args.top, root, args.max_pixels, model_file=model)
    sys.stdout.write(render_json(predictions) if args.json else render_text(predictions))


def _top(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= len(CLASS_NAMES):
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer from 1 to {len(CLASS_NAMES)}")
    return int(value)


def cli() -> None:
    """Console script `fmnist-predict`."""
    run_main(main)


if __name__ == "__main__":
    cli()
