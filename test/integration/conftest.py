"""pytest fixtures for hdnsd's integration tests; the helpers they use are in harness.py."""

import pytest

from harness import DaemonFactory


@pytest.fixture
def hdnsd(tmp_path):
    """Function-scoped factory: hdnsd.start(...) → Daemon, all stopped at teardown."""
    f = DaemonFactory(tmp_path)
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_hdnsd(tmp_path_factory):
    f = DaemonFactory(tmp_path_factory.mktemp("hdnsd"))
    yield f
    f.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared daemon serving data/cluster.json with default options (TTL 5). Tests that
    only query use it; anything that reloads, signals or breaks it starts its own."""
    f = DaemonFactory(tmp_path_factory.mktemp("hdnsd-session"))
    d = f.start(name="session")
    yield d
    f.close()
