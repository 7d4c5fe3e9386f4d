import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


class FakeClock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualWorker:
    """Holds background tasks until the test runs them, so a job's states can be seen."""

    def __init__(self):
        self.tasks = []

    def __call__(self, task) -> None:
        self.tasks.append(task)

    def run(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def worker():
    return ManualWorker()


@pytest.fixture
def make_client(clock, worker):
    def make(**kwargs):
        settings = kwargs.pop("settings", Settings(env="test", session_ttl=60, tts_ttl=30))
        return TestClient(create_app(settings=settings, clock=clock, worker=worker, **kwargs))
    return make


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def auth(client):
    token = client.post("/session", json={"student_id": "ada"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}
