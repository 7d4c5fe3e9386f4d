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


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(clock):
    def make(**kwargs):
        settings = kwargs.pop("settings", Settings(env="test", session_ttl=60, tts_ttl=30))
        return TestClient(create_app(settings=settings, clock=clock, **kwargs))
    return make


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def auth(client):
    token = client.post("/session", json={"student_id": "ada"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}
