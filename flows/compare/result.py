"""`fmnist-flow compare [A] [B]`: is the difference between two revisions real?

Each revision is a commit, branch, tag, DVC experiment or the workspace. Nothing is retrained or
rerun: the test-set predictions that evaluate wrote (a DVC output) are read back for each
revision, from the local cache or the DVC remote, in this process (`dvc.api.read`). Per model: both
accuracies with Wilson intervals, the difference B - A with a paired interval, McNemar's mid-p,
the images B fixes and breaks, and a verdict; per class the same with Holm's adjustment; and the
MLP against the CNN within each revision. Rendered as text, Markdown (a pull-request comment),
JSON or a self-contained HTML page with pictures.
"""

from __future__ import annotations

import dataclasses
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dvc.api
import numpy as np
import yaml
from dvc.exceptions import DvcException, PathMissingError

from flows.plumbing import git
from stages.lib import paths, stats
from stages.lib.idx import CLASS_NAMES
from stages.lib.live import read_history

WORKSPACE = "workspace"
SHOWN_IMAGES = 16  # of the images B broke, and of those it fixed, per model in the HTML page


class CompareError(ValueError):
    """A revision cannot be compared; the message says why and how to fix it."""


@dataclass(frozen=True)
class Revision:
    name: str  # as given: HEAD, a branch, a tag, an experiment's name, or "workspace"
    commit: str | None  # None for the workspace
    lock: dict[str, Any]  # its dvc.lock

    @property
    def label(self) -> str:
        return "the workspace" if self.commit is None else f"{self.name} ({self.commit[:7]})"


def resolve(root: Path, name: str) -> Revision:
    """The revision `name` names, with its dvc.lock; CompareError if there is none, or if its
    evaluate stage never ran."""
    if name == WORKSPACE:
        commit, text = None, (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else None
    else:
        commit = git.commit_of(root, name) or git.experiment_commit(root, name)
        if commit is None:
            raise CompareError(
                f"{name!r} is no commit, branch, tag or DVC experiment here (`git log`, `dvc exp show` list them)"
            )
        text = git.show(root, commit, "dvc.lock")
    revision = Revision(name, commit, yaml.safe_load(text) if text else {})
    outs = revision.lock.get("stages", {}).get("evaluate", {}).get("outs", [])
    if not any(out["path"] == _rel(paths.PREDICTIONS) for out in outs):
        where = "in the workspace" if commit is None else f"at {revision.label}"
        raise CompareError(
            f"evaluate never ran {where} (its dvc.lock records no {_rel(paths.PREDICTIONS)}): run "
            f"`dvc repro evaluate` there{' and commit dvc.lock' if commit else ''}, then compare again"
        )
    return revision


def _rel(path: Path) -> str:
    return str(path.relative_to(paths.ROOT))


def _out_md5(revision: Revision, stage: str, path: Path) -> str | None:
    outs = revision.lock["stages"].get(stage, {}).get("outs", [])
    return next((out.get("md5") for out in outs if out["path"] == _rel(path)), None)


def _test_images(revision: Revision) -> tuple[Any, ...]:
    """What decides which test images evaluate scored, in which order: the raw files, and
    preprocess's test_limit and seed (its normalisation does not change the images)."""
    stage = revision.lock["stages"].get("preprocess", {})
    raw = next((dep.get("md5") for dep in stage.get("deps", []) if dep["path"] == _rel(paths.RAW)), None)
    section = stage.get("params", {}).get("params.yaml", {}).get("preprocess", {})
    return raw, section.get("test_limit"), section.get("seed")


def check_same_test_split(a: Revision, b: Revision) -> None:
    if _out_md5(a, "preprocess", paths.TEST) == _out_md5(b, "preprocess", paths.TEST):
        return
    if _test_images(a) != _test_images(b):
        (_, limit_a, seed_a), (_, limit_b, seed_b) = _test_images(a), _test_images(b)
        raise CompareError(
            f"{a.label} and {b.label} were evaluated on different test images (preprocess.test_limit "
            f"{limit_a} and {limit_b}, seed {seed_a} and {seed_b}): compare revisions of one test split, or "
            f"rerun one with the other's preprocess params"
        )


def _file(root: Path, revision: Revision, path: Path) -> Path | io.BytesIO:
    """A DVC-tracked file of `revision` (`path` is one of stages.lib.paths): the workspace's own, or
    read from the local cache or the DVC remote."""
    if revision.commit is None:
        if not paths.in_checkout(path, root).exists():
            raise CompareError(f"the workspace has no {_rel(path)}: run `dvc repro` (or `dvc checkout`) first")
        return paths.in_checkout(path, root)
    try:
        return io.BytesIO(dvc.api.read(_rel(path), repo=str(root), rev=revision.commit, mode="rb"))
    except (DvcException, OSError) as exc:
        why = "" if isinstance(exc, PathMissingError) else f" ({str(exc).splitlines()[0]})"
        raise CompareError(
            f"{_rel(path)} of {revision.label} is neither in the DVC cache nor on the DVC remote{why}: "
            f"`dvc push` it from where it was made, or rerun `dvc repro` at that revision"
        ) from None


def _answers(root: Path, revision: Revision) -> dict[str, np.ndarray]:
    """Each model's predicted class of every test image."""
    with np.load(_file(root, revision, paths.PREDICTIONS), allow_pickle=False) as data:
        return {name: data[paths.predictions_key(name)].argmax(axis=1) for name in paths.MODELS}


def _history(root: Path, revision: Revision, scratch: Path) -> dict[str, dict[str, np.ndarray]]:
    """The DVCLive curves of each model (DVC-tracked files, read as `_file` reads them; git's in
    commits from before they moved to DVC's cache), empty where a revision has none."""
    base = root if revision.commit is None else scratch / f"{revision.commit}-live"
    histories = {}
    for name in paths.MODELS:
        try:
            if revision.commit is not None:
                for metric in paths.HISTORY_METRICS:
                    data = _file(root, revision, paths.history_file(name, metric)).read()
                    copy = paths.in_checkout(paths.history_file(name, metric), base)
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_bytes(data)
            histories[name] = read_history(name, base)
        except (CompareError, FileNotFoundError, KeyError, ValueError):
            continue
    return histories


def _per_class(labels: np.ndarray, right_a: np.ndarray, right_b: np.ndarray) -> dict[str, dict[str, Any]]:
    """The comparison within each true class, p-values adjusted over the classes (Holm)."""
    raw = {cls: stats.compare(right_a[labels == c], right_b[labels == c]) for c, cls in enumerate(CLASS_NAMES)}
    adjusted = stats.holm([r.p_value for r in raw.values()])
    return {
        cls: {**dataclasses.replace(r, p_value=p).as_dict(), "p_value_unadjusted": r.p_value}
        for (cls, r), p in zip(raw.items(), adjusted, strict=True)
    }


@dataclass
class Result:
    """Everything `compare` found; `as_json` is what `--json` prints."""

    a: Revision
    b: Revision
    labels: np.ndarray
    answers: dict[str, dict[str, np.ndarray]]  # {"a"/"b": {model: predicted classes}}
    models: dict[str, stats.Comparison]
    per_class: dict[str, dict[str, dict[str, Any]]]
    within: dict[str, stats.Comparison]  # {"a"/"b": MLP (A side) against CNN (B side)}
    images: np.ndarray | None = None
    histories: dict[str, dict[str, dict[str, np.ndarray]]] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "a": {"revision": self.a.name, "commit": self.a.commit},
            "b": {"revision": self.b.name, "commit": self.b.commit},
            "test_images": int(self.labels.size),
            "confidence": stats.CONFIDENCE,
            "models": {name: c.as_dict() for name, c in self.models.items()},
            "per_class": self.per_class,
            "mlp_vs_cnn": {side: c.as_dict("MLP", "CNN") for side, c in self.within.items()},
        }


def compare(root: Path, name_a: str, name_b: str, *, pictures: bool = False) -> Result:
    """Compare revision `name_b` against `name_a` on their test predictions (see the module's docstring)."""
    a, b = resolve(root, name_a), resolve(root, name_b)
    check_same_test_split(a, b)
    answers = {"a": _answers(root, a), "b": _answers(root, b)}
    # One test split (checked above): the workspace's copy when it is one side, else A's.
    with np.load(_file(root, b if b.commit is None else a, paths.TEST), allow_pickle=False) as test:
        labels = test["y"]
        images = test["x"] if pictures else None
    histories = None
    if pictures:
        with tempfile.TemporaryDirectory(prefix="fmnist-compare-") as tmp:
            histories = {r.label: _history(root, r, Path(tmp)) for r in (a, b)}
    for side, revision in (("a", a), ("b", b)):
        sizes = {len(v) for v in answers[side].values()}
        if sizes != {labels.size}:
            raise CompareError(
                f"{revision.label}'s predictions cover {sizes.pop()} images but the test split has {labels.size}: "
                f"its dvc.lock and outputs disagree; rerun `dvc repro evaluate` there"
            )
    right = {side: {n: answers[side][n] == labels for n in paths.MODELS} for side in answers}
    return Result(
        a=a,
        b=b,
        labels=labels,
        answers=answers,
        models={n: stats.compare(right["a"][n], right["b"][n]) for n in paths.MODELS},
        per_class={n: _per_class(labels, right["a"][n], right["b"][n]) for n in paths.MODELS},
        within={side: stats.compare(right[side]["mlp"], right[side]["cnn"]) for side in right},
        images=images,
        histories=histories,
    )


def test_answers(root: Path, names: list[str]) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """The test split's labels and each revision's predicted classes ({name: {model: classes}}),
    for revisions evaluated on one test split (CompareError otherwise)."""
    revisions = [resolve(root, name) for name in names]
    for other in revisions[1:]:
        check_same_test_split(revisions[0], other)
    answers = {name: _answers(root, revision) for name, revision in zip(names, revisions, strict=True)}
    with np.load(_file(root, revisions[0], paths.TEST), allow_pickle=False) as test:
        return test["y"], answers
