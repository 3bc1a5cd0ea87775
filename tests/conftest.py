"""Fixtures shared by every test: a real Redis server, and the network-namespace lab.

- ``redis_url`` / ``r``: a throwaway redis-server on a unix socket (session-wide),
  flushed before each test that uses ``r``.
- ``lab``: the lab built once per session with prefix ``$HOTSPOT_TEST_PREFIX``
  (default ``hs-t-``, so a demo lab ``hs-`` keeps running), torn down at the end
  even when tests fail.
- ``gw``: the lab's Redis, with nobody online before and after the test (lab, deploy and
  monitoring tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from gateway.lab.lab import Lab, LabError
from gateway.lab.probe import everyone_out
from gateway.lab.topology import LabSpec
from gateway.model.store import connect

TEST_PREFIX = os.environ.get("HOTSPOT_TEST_PREFIX", "hs-t-")
LAB_CLIENTS = int(os.environ.get("HOTSPOT_TEST_CLIENTS", "6"))
ARTIFACTS = Path(__file__).parent / "artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = os.geteuid() == 0
    for item in items:
        if "lab" in item.keywords and not root:
            item.add_marker(pytest.mark.skip(reason="lab tests build network namespaces: run as root"))


@pytest.fixture(scope="session")
def redis_url():
    """Start a private redis-server on a unix socket; yield its URL."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (make deps)")
    folder = Path(tempfile.mkdtemp(prefix="hs-redis-"))
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.02)
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def r(redis_url) -> redis.Redis:
    """A Redis client (str replies) on an empty database."""
    from gateway.model.store import connect

    client = connect(redis_url)
    client.flushall()
    return client


@pytest.fixture(scope="session")
def lab():
    """The session's lab (prefix $HOTSPOT_TEST_PREFIX, $HOTSPOT_TEST_CLIENTS phones)."""
    if os.geteuid() != 0:
        pytest.skip("lab tests build network namespaces: run as root")
    the_lab = Lab(LabSpec(prefix=TEST_PREFIX, clients=LAB_CLIENTS))
    the_lab.down(wipe=True)  # leftovers of an interrupted run
    try:
        the_lab.up()
    except LabError:
        the_lab.down(wipe=False)
        raise
    yield the_lab
    the_lab.down(wipe=os.environ.get("HOTSPOT_TEST_KEEP_LAB_STATE") != "1")


@pytest.fixture
def gw(lab):
    """Redis of the running lab, with nobody online before and after the test."""
    r = connect(lab.config())
    everyone_out(lab, r)
    yield r
    everyone_out(lab, r)


@pytest.fixture
def artifacts() -> Path:
    """A folder for screenshots and other files tests leave for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
