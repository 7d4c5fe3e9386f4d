import os

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_health_reports_the_environment_from_backend_env():
    expected = os.environ.get("BACKEND_ENV", "development")
    body = TestClient(create_app()).get("/health").json()
    assert body == {"status": "ok", "env": expected, "version": "0.1.0"}


def test_settings_from_env():
    s = Settings.from_env({"BACKEND_ENV": "production", "BACKEND_TTS_TTL": "5"})
    assert (s.env, s.session_ttl, s.tts_ttl) == ("production", 3600.0, 5.0)
    assert Settings.from_env({}).env == "development"
    with pytest.raises(ValueError, match="BACKEND_ENV"):
        Settings.from_env({"BACKEND_ENV": "staging"})
    with pytest.raises(ValueError):
        Settings(tts_ttl=0)


def test_production_hides_api_docs(make_client):
    assert make_client().get("/openapi.json").status_code == 200
    assert make_client(settings=Settings(env="production")).get("/openapi.json").status_code == 404


def test_session_tokens_are_unique_and_validated(client, clock):
    first = client.post("/session", json={"student_id": "ada"})
    second = client.post("/session", json={"student_id": "ada"})
    assert first.status_code == second.status_code == 201
    assert first.json()["token"] != second.json()["token"]
    assert first.json()["expires_at"] == clock.now + 60
    for bad in ({}, {"student_id": ""}, {"student_id": "no spaces"}):
        assert client.post("/session", json=bad).status_code == 422


def test_protected_routes_need_a_live_session(client, auth, clock):
    question = {"question": "What is 1 + 1?"}
    assert client.post("/ask", json=question).status_code == 401
    assert client.post("/ask", json=question, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/ask", json=question, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/ask", json=question, headers=auth).status_code == 200
    clock.advance(60)
    expired = client.post("/ask", json=question, headers=auth)
    assert expired.status_code == 401 and expired.json()["detail"] == "session expired"
