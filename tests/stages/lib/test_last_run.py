"""A failed run puts back the uncached outputs of the last successful one, as dvc.lock records them."""

import hashlib
import json
import shutil

import yaml

from stages.lib import last_run

PIPELINE = {"stages": {"train-cnn": {
    "cmd": "python -m stages.train_cnn",
    "outs": ["models/cnn.keras", "dvclive/train_cnn/plots"],
    "metrics": [{"dvclive/train_cnn/metrics.json": {"cache": False}}],
}}}  # fmt: skip


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324


def _checkout(root, summary=b'{"val_accuracy": 0.9}'):
    (root / "dvclive/train_cnn/plots/metrics").mkdir(parents=True)
    (root / "dvclive/train_cnn/metrics.json").write_bytes(summary)
    (root / "dvclive/train_cnn/plots/metrics/loss.tsv").write_text("step\tloss\n0\t0.5\n")
    (root / "models").mkdir()
    (root / "models/cnn.keras").write_bytes(b"model")
    (root / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    lock = {"stages": {"train-cnn": {"outs": [
        {"path": "dvclive/train_cnn/metrics.json", "md5": _md5(summary)},
        {"path": "dvclive/train_cnn/plots", "md5": "0123.dir"},
        {"path": "models/cnn.keras", "md5": _md5(b"model")},
    ]}}}  # fmt: skip
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    return root


def _as_dvc_leaves_it_after_a_failed_run(root):
    """DVC deleted every output before the stage; the stage wrote a first epoch, then failed."""
    for path in ("dvclive/train_cnn/metrics.json", "models/cnn.keras"):
        (root / path).unlink()
    shutil.rmtree(root / "dvclive/train_cnn/plots")
    (root / "dvclive/train_cnn/metrics.json").write_text(json.dumps({"step": 0}))


def test_uncached_and_cached_outputs_are_read_from_dvc_yaml(tmp_path):
    assert last_run.outputs("train-cnn", _checkout(tmp_path)) == (
        ["dvclive/train_cnn/metrics.json"],
        ["models/cnn.keras", "dvclive/train_cnn/plots"],
    )


def test_a_failed_run_gets_the_last_runs_summary_back_and_names_the_outputs_to_check_out(tmp_path):
    root = _checkout(tmp_path)
    last_run.keep("train-cnn", root)
    _as_dvc_leaves_it_after_a_failed_run(root)
    assert last_run.put_back("train-cnn", root) == ["dvclive/train_cnn/metrics.json"]
    assert (root / "dvclive/train_cnn/metrics.json").read_bytes() == b'{"val_accuracy": 0.9}'
    # DVC's cache has these.
    assert last_run.missing_cached("train-cnn", root) == ["models/cnn.keras", "dvclive/train_cnn/plots"]


def test_a_copy_of_another_run_than_dvc_lock_records_is_not_put_back(tmp_path):
    root = _checkout(tmp_path)
    last_run.keep("train-cnn", root)
    _checkout(tmp_path / "other", summary=b'{"val_accuracy": 0.8}')  # dvc.lock of another run
    (root / "dvc.lock").write_text((tmp_path / "other/dvc.lock").read_text())
    _as_dvc_leaves_it_after_a_failed_run(root)
    assert last_run.put_back("train-cnn", root) == []
    assert json.loads((root / "dvclive/train_cnn/metrics.json").read_text()) == {"step": 0}


def test_nothing_to_put_back_without_a_kept_copy(tmp_path):
    root = _checkout(tmp_path)
    _as_dvc_leaves_it_after_a_failed_run(root)
    assert last_run.put_back("train-cnn", root) == []


def test_a_new_successful_run_replaces_the_kept_copy(tmp_path):
    root = _checkout(tmp_path)
    last_run.keep("train-cnn", root)
    (root / "dvclive/train_cnn/metrics.json").write_text('{"val_accuracy": 0.95}')
    last_run.keep("train-cnn", root)
    kept = last_run.kept_copy("train-cnn", root)
    assert (kept / "dvclive/train_cnn/metrics.json").read_text() == '{"val_accuracy": 0.95}'
    assert [p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()] == [
        "dvclive/train_cnn/metrics.json"
    ]  # the TSVs are in DVC's cache
