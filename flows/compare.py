"""`fmnist-flow compare [A] [B]`: is the difference between two revisions real?

Each revision is a commit, branch, tag, DVC experiment or the workspace. Nothing is retrained or
rerun: the test-set predictions that evaluate wrote (a DVC output) are read back for each
revision, from the local cache or the DVC remote, as `dvc get` reads them. Per model: both
accuracies with Wilson intervals, the difference B - A with a paired interval, McNemar's mid-p,
the images B fixes and breaks, and a verdict; per class the same with Holm's adjustment; and the
MLP against the CNN within each revision. Rendered as text, Markdown (a pull-request comment),
JSON or a self-contained HTML page with pictures.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from flows import dvc_cli as dvc
from flows import git_cli as git
from stages.lib import figures, paths, stats
from stages.lib.document import Block, Figure, Heading, Para, Table, markdown_table, text_table, to_html
from stages.lib.idx import CLASS_NAMES
from stages.lib.live import read_history
from stages.lib.scoring import confusion_matrix

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


def _file(root: Path, revision: Revision, path: Path, scratch: Path) -> Path:
    """A DVC-tracked file of `revision` (`path` is one of stages.lib.paths): the workspace's own, or
    `dvc get` from the cache or the remote."""
    if revision.commit is None:
        if not paths.in_checkout(path, root).exists():
            raise CompareError(f"the workspace has no {_rel(path)}: run `dvc repro` (or `dvc checkout`) first")
        return paths.in_checkout(path, root)
    dest = scratch / revision.commit / _rel(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return dvc.get(root, _rel(path), revision.commit, dest)
    except dvc.DvcError as exc:
        raise CompareError(
            f"{_rel(path)} of {revision.label} is neither in the DVC cache nor on the DVC remote ({exc}): "
            f"`dvc push` it from where it was made, or rerun `dvc repro` at that revision"
        ) from None


def _answers(root: Path, revision: Revision, scratch: Path) -> dict[str, np.ndarray]:
    """Each model's predicted class of every test image."""
    with np.load(_file(root, revision, paths.PREDICTIONS, scratch), allow_pickle=False) as data:
        return {name: data[paths.predictions_key(name)].argmax(axis=1) for name in paths.MODELS}


def _history(root: Path, revision: Revision, scratch: Path) -> dict[str, dict[str, np.ndarray]]:
    """The DVCLive curves of each model (git-tracked files), empty where a revision has none."""
    base = root if revision.commit is None else scratch / f"{revision.commit}-live"
    histories = {}
    for name in paths.MODELS:
        if revision.commit is not None:
            for metric in paths.HISTORY_METRICS:
                relative = _rel(paths.history_file(name, metric))
                text = git.show(root, revision.commit, relative)
                if text is not None:
                    (base / relative).parent.mkdir(parents=True, exist_ok=True)
                    (base / relative).write_text(text)
        try:
            histories[name] = read_history(name, base)
        except (FileNotFoundError, KeyError, ValueError):
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
    with tempfile.TemporaryDirectory(prefix="fmnist-compare-") as tmp:
        scratch = Path(tmp)
        answers = {"a": _answers(root, a, scratch), "b": _answers(root, b, scratch)}
        # One test split (checked above): the workspace's copy when it is one side, else A's.
        side = b if b.commit is None else a
        with np.load(_file(root, side, paths.TEST, scratch), allow_pickle=False) as test:
            labels = test["y"]
            images = test["x"] if pictures else None
        histories = {r.label: _history(root, r, scratch) for r in (a, b)} if pictures else None
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
    with tempfile.TemporaryDirectory(prefix="fmnist-compare-") as tmp, ThreadPoolExecutor(4) as pool:
        scratch = Path(tmp)
        answers = dict(zip(names, pool.map(lambda r: _answers(root, r, scratch), revisions), strict=True))
        with np.load(_file(root, revisions[0], paths.TEST, scratch), allow_pickle=False) as test:
            labels = test["y"]
    return labels, answers


# --- rendering ---


def verdict_lines(result: Result) -> list[str]:
    """One line per model: `cnn: +0.41 points [+0.12, +0.70], p = 0.006: B is better`."""
    return [f"{name}: {c.summary()}: {c.verdict()}" for name, c in result.models.items()]


def _model_rows(result: Result) -> tuple[list[str], list[list[str]]]:
    header = ["model", "A", "B", "B - A (points)", "p", "B fixes", "B breaks", "verdict"]
    rows = [
        [
            name,
            f"{stats.percent(c.accuracy_a)} {stats.interval(c.ci_a)}",
            f"{stats.percent(c.accuracy_b)} {stats.interval(c.ci_b)}",
            f"{stats.points(c.difference)} [{stats.points(c.difference_ci[0])}, {stats.points(c.difference_ci[1])}]",
            stats.p_text(c.p_value).removeprefix("p = "),
            str(c.fixed),
            str(c.broken),
            c.verdict(),
        ]
        for name, c in result.models.items()
    ]
    return header, rows


def _class_rows(result: Result) -> tuple[list[str], list[list[str]]]:
    header = ["class", *(f"{name} {column}" for name in paths.MODELS for column in ("B - A (points)", "p (Holm)"))]
    rows = []
    for cls in CLASS_NAMES:
        row = [cls]
        for name in paths.MODELS:
            c = result.per_class[name][cls]
            marker = " *" if c["verdict"] != "no detectable difference" else ""
            low, high = c["difference_ci"]
            row += [
                f"{stats.points(c['difference'])} [{stats.points(low)}, {stats.points(high)}]",
                stats.p_text(c["p_value"]).removeprefix("p = ") + marker,
            ]
        rows.append(row)
    return header, rows


def _within_lines(result: Result) -> list[str]:
    revisions = {"a": result.a, "b": result.b}
    return [
        f"{revisions[side].label}: CNN - MLP = {c.summary()}: {c.verdict('MLP', 'CNN')}"
        for side, c in result.within.items()
    ]


def _heading(result: Result) -> str:
    return (
        f"A = {result.a.label}, B = {result.b.label}: {result.labels.size:,} test images, "
        f"{stats.CONFIDENCE:.0%} intervals, McNemar's mid-p"
    )


def render_text(result: Result) -> str:
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    return "\n".join([
        _heading(result), "", text_table(models_header, models), "", *verdict_lines(result), "",
        "Per class (p adjusted over the 10 classes by Holm's method; * a detectable difference):",
        text_table(class_header, classes), "", "MLP against CNN on the same images:", *_within_lines(result),
    ]) + "\n"  # fmt: skip


def render_markdown(result: Result) -> str:
    """For a pull-request comment (CML's `cml comment create`)."""
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    return "\n".join([
        "## Is the difference real?", "", _heading(result) + ".", "",
        *(f"- **{line}**" for line in verdict_lines(result)), "", *markdown_table(models_header, models), "",
        "<details><summary>Per class (Holm-adjusted p; * a detectable difference)</summary>", "",
        *markdown_table(class_header, classes), "", "</details>", "", "MLP against CNN on the same images:", "",
        *(f"- {line}" for line in _within_lines(result)), "",
    ])  # fmt: skip


def _changed(result: Result, name: str, which: str) -> np.ndarray:
    """Indices of the test images B broke (`which` = "broken") or fixed, for model `name`."""
    right_a = result.answers["a"][name] == result.labels
    right_b = result.answers["b"][name] == result.labels
    return np.flatnonzero(right_a & ~right_b if which == "broken" else ~right_a & right_b)


def html_blocks(result: Result) -> list[Block]:
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    blocks: list[Block] = [
        Para(_heading(result) + "."),
        *(Para(line) for line in verdict_lines(result)),
        Table(models_header, models),
        Heading("Per class"),
        Para("p adjusted over the 10 classes by Holm's method; * marks a detectable difference."),
        Table(class_header, classes),
        Heading("MLP against CNN"),
        *(Para(line) for line in _within_lines(result)),
    ]
    assert result.images is not None and result.histories is not None
    for name in paths.MODELS:
        blocks.append(Heading(f"{name.upper()}: the test images B broke and fixed"))
        for which in ("broken", "fixed"):
            index = _changed(result, name, which)
            if not index.size:
                blocks.append(Para(f"B {which} none."))
                continue
            shown = index[:SHOWN_IMAGES]
            answers = {"A": result.answers["a"][name][shown], "B": result.answers["b"][name][shown]}
            title = f"{name.upper()}: {len(shown)} of the {index.size} images B {which}"
            png = figures.plot_changed_images(result.images[shown], result.labels[shown], answers, title)
            blocks.append(Figure(f"{name}_{which}", title, png))
    curves = {label: models for label, models in result.histories.items() if models}
    if curves:
        blocks += [Heading("Learning curves"), Figure("curves", "validation accuracy per epoch of both revisions",
                                                      figures.plot_revision_curves(curves))]  # fmt: skip
    differences = {
        f"{name.upper()}: B - A": confusion_matrix(result.labels, result.answers["b"][name])
        - confusion_matrix(result.labels, result.answers["a"][name])
        for name in paths.MODELS
    }
    blocks += [
        Heading("Confusion matrices, B - A"),
        Para("Images per (actual, predicted) pair that B has more (blue) or fewer (red) of than A."),
        Figure("confusion_difference", "difference of the confusion matrices", figures.plot_confusion_differences(
            differences)),
    ]  # fmt: skip
    return blocks


def render_html(result: Result) -> str:
    return to_html(html_blocks(result), f"{result.b.label} against {result.a.label}")


def render_json(result: Result) -> str:
    return json.dumps(result.as_json(), indent=2) + "\n"
