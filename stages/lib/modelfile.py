"""The trained model's .keras file: its bytes (the same for the same model), its metadata, loading it."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from stages.lib import paths
from stages.lib.files import read_json, write_bytes
from stages.lib.idx import CLASS_NAMES
from stages.lib.stage import StageError, disk_full_message, display_path, is_disk_full

# The key of a trained model's own entry in its .keras file's metadata.json: its input
# normalisation and class names (model_about).
MODEL_ABOUT_KEY = "fmnist"


def model_about() -> dict[str, Any]:
    """What a served model needs besides its weights: how to turn 0-255 pixels into its inputs
    (the training split's normalisation) and the class of each logit. A model fetched on its
    own (`dvc artifacts get`) then carries everything `fmnist-predict --model-file` needs."""
    stats = read_json(paths.STATS)
    return {"input": {key: stats[key] for key in ("normalize", "mean", "std")}, "classes": list(CLASS_NAMES)}


def read_model_about(path: Path) -> dict[str, Any] | None:
    """What a trained .keras file says about its inputs and classes, or None if it says nothing."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get(MODEL_ABOUT_KEY)
    except FileNotFoundError:
        raise StageError(f"{display_path(path)} is missing") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        raise StageError(f"{display_path(path)} is not a Keras model file (.keras)") from None


def _renumber_shared_objects(node: Any, ids: dict[int, int]) -> Any:
    """Keras links objects shared between layers by their id() at save time; number them 1, 2, ...
    in order of appearance instead (same links, same bytes in every process)."""
    if isinstance(node, dict):
        if "shared_object_id" in node:
            node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids) + 1)
        return {key: _renumber_shared_objects(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_objects(value, ids) for value in node]
    return node


def model_bytes(model: Any, path: Path, about: dict[str, Any] | None = None) -> bytes:
    """`model` (a keras.Model) as the bytes of a .keras file that depend on the model alone (to be
    written at `path`), with `about` under MODEL_ABOUT_KEY in its metadata.json.

    Keras stamps the save time into the archive (metadata.json's date_saved and the weights'
    zip entry) and memory addresses into config.json (`shared_object_id`), so every retraining
    would be a new DVC object: stages downstream would rerun, and equal trainings on two
    machines of a sweep would leave run-cache entries that never match each other's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".save-") as scratch:
            saved = Path(scratch) / path.name
            model.save(saved)
            archive = io.BytesIO()
            with zipfile.ZipFile(saved) as src, zipfile.ZipFile(archive, "w") as dst:
                for entry in src.infolist():
                    data = src.read(entry)
                    if entry.filename == "metadata.json":
                        metadata = json.loads(data)
                        metadata.pop("date_saved", None)
                        if about:
                            metadata[MODEL_ABOUT_KEY] = about
                        data = json.dumps(metadata).encode()
                    elif entry.filename == "config.json":
                        data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
                    dst.writestr(zipfile.ZipInfo(entry.filename), data, compress_type=entry.compress_type)
            return archive.getvalue()
    except Exception as exc:
        if is_disk_full(exc):  # Keras (h5py) writing its scratch copy
            raise StageError(disk_full_message(path)) from None
        raise


def save_model(model: Any, path: Path, about: dict[str, Any] | None = None) -> None:
    write_bytes(path, model_bytes(model, path, about))


def load_model(path: Path) -> Any:
    """Load a trained model safely (no arbitrary code), or say how to rebuild it."""
    # TensorFlow starts only here: reading a file's metadata (predict checking its inputs) needs none.
    from stages.lib.tf_runtime import keras

    stage = paths.training_stage(path.stem)
    if not path.exists():
        raise StageError(f"{display_path(path)} is missing: run `dvc repro {stage}`")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise StageError(
            f"{display_path(path)} cannot be loaded ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            f"restore it with `dvc checkout --force {display_path(path)}` or retrain with `dvc repro -f {stage}`"
        ) from None
