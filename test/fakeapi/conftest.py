"""pytest fixtures for the fake API server's own tests (test/fakeapi/test_*.py)."""

import pytest

from fake_apiserver import FakeApiServer


@pytest.fixture
def api(tmp_path):
    """A started fake with short bookmark intervals; stopped at teardown."""
    s = FakeApiServer(tmp_path / "api")
    s.bookmark_interval_s = 0.3
    s.start()
    yield s
    s.stop()
