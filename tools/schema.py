"""params.yaml's JSON Schema, generated from the stages' pydantic models.

    python -m tools.schema          # writes params.schema.json at the project root
    python -m tools.schema --check  # exits 1 when the committed file is stale

Editors use it for completion, hover text and inline errors in params.yaml (the first line of
params.yaml points VS Code's YAML extension at it). Not a DVC dependency of any stage: the
stages validate with the models themselves.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from stages.lib import params, paths
from stages.lib.files import write_text
from stages.lib.sections.evaluate import EvaluateParams
from stages.lib.sections.fetch import FetchParams
from stages.lib.sections.preprocess import PreprocessParams
from stages.lib.sections.report import ReportParams
from stages.lib.sections.train_cnn import CNNParams
from stages.lib.sections.train_mlp import MLPParams

log = logging.getLogger("tools.schema")
SCHEMA_FILE = "params.schema.json"


class Params(BaseModel):
    """Every hyperparameter of the Fashion-MNIST pipeline, one section per stage."""

    model_config = ConfigDict(extra="forbid", title="params.yaml", use_attribute_docstrings=True)

    fetch: FetchParams
    """fetch: where the four IDX files come from."""
    preprocess: PreprocessParams
    """preprocess: normalisation and the validation split."""
    train_mlp: MLPParams
    """train-mlp: the multilayer perceptron (or, with hidden_units: [], softmax regression)."""
    train_cnn: CNNParams
    """train-cnn: the convolutional network."""
    evaluate: EvaluateParams
    """evaluate: scores both models on the test split."""
    report: ReportParams
    """report: the Markdown/HTML report."""


def validate_all(document: Any) -> None:
    """Every section of a params.yaml document, checked as its stage will check it: ParamsError
    naming the first key, value or section that a stage would refuse."""
    if not isinstance(document, dict):
        raise params.ParamsError(f"params.yaml must be a mapping of sections, got {type(document).__name__}")
    for section, field in Params.model_fields.items():
        if section not in document:
            raise params.ParamsError(f"params.yaml has no section '{section}'")
        params.validate(section, document[section], field.annotation)


def schema_text() -> str:
    return json.dumps(Params.model_json_schema(), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed schema is stale")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target, wanted = paths.ROOT / SCHEMA_FILE, schema_text()
    current = target.read_text() if target.exists() else ""
    if args.check:
        if current != wanted:
            log.error("%s is stale: run `python -m tools.schema` and commit it", SCHEMA_FILE)
            sys.exit(1)
        log.info("%s is up to date", SCHEMA_FILE)
    elif current != wanted:
        write_text(target, wanted)
        log.info("wrote %s", SCHEMA_FILE)


if __name__ == "__main__":
    main()
