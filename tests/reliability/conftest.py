"""Each reliability test damages its own copy of the session's tiny reproduced project."""

import pytest

from tests.helpers import Project


@pytest.fixture
def project(reproduced, tmp_path) -> Project:
    return reproduced.copy_to(tmp_path / "project")
