import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def tiny_model_cache(tmp_path_factory):
    """Tiny models are built once per test session, in a temporary cache (subprocesses too)."""
    os.environ["NATURAL_INSTRUCT_CACHE"] = str(tmp_path_factory.mktemp("tiny-models"))
    yield
