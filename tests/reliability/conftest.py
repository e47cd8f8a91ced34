"""A tiny reproduced project, built once per session and copied for each test that damages it."""

import shutil

import pytest

from tests.helpers import TINY_PARAMS, Project, require_real_data


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Project:
    require_real_data()
    project = Project(tmp_path_factory.mktemp("reproduced") / "project")
    project.set_params(**TINY_PARAMS)
    project.repro()
    project.commit("tiny pipeline")
    return project


@pytest.fixture
def project(reproduced, tmp_path) -> Project:
    root = tmp_path / "project"
    shutil.copytree(reproduced.root, root, symlinks=True)
    copy = Project.__new__(Project)
    copy.root = root
    return copy
