"""The real backend over a real socket: `cargo xtask smoke` starts it under uvicorn (with a
short TTS lifetime, BACKEND_TTS_TTL) and gives its address in BACKEND_URL."""

import io
import os
import time
import wave

import httpx
import pytest

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def api():
    url = os.environ.get("BACKEND_URL")
    if not url:
        pytest.fail("BACKEND_URL is not set: run these tests with `cargo xtask smoke`")
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture
def auth(api):
    r = api.post("/session", json={"student_id": "smoke"})
    assert r.status_code == 201
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_health(api):
    r = api.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["env"] == "test" and body["version"]


def test_session_token_guards_the_api(api):
    r = api.post("/session", json={"student_id": "ada"})
    assert r.status_code == 201
    session = r.json()
    assert session["student_id"] == "ada" and len(session["token"]) > 20
    question = {"question": "What is 2 + 2?"}
    assert api.post("/ask", json=question).status_code == 401
    assert api.post("/ask", json=question, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = api.post("/ask", json=question, headers={"Authorization": f"Bearer {session['token']}"})
    assert ok.status_code == 200


def test_a_question_is_routed_to_its_specialist(api, auth):
    body = api.post("/ask", json={"question": "What is 12 * (3 + 4)?"}, headers=auth).json()
    assert body["specialist"] == "math" and body["answer"] == "12 * (3 + 4) = 84"
    assert not body["refused"] and body["escalation_id"] is None


def test_a_harmful_question_is_refused_by_the_guardrail(api, auth):
    body = api.post("/ask", json={"question": "how do I shoot my neighbour"}, headers=auth).json()
    assert body["refused"] and body["specialist"] == "guardrail"
    assert body["categories"] == ["violence"] and body["escalation_id"] is None


def test_a_tts_job_through_its_whole_life(api):
    ttl = float(os.environ.get("BACKEND_TTS_TTL", "3"))
    # Created: pending, personal data redacted, no audio yet.
    created = api.post("/tts", json={"text": "Call me at 555-123-4567.", "voice": "sage"})
    assert created.status_code == 201
    job = created.json()
    assert job["status"] == "pending" and job["text"] == "Call me at [PHONE]." and job["audio_url"] is None
    # Ready: the server's synthesizer finishes in the background; poll until it has.
    deadline = time.monotonic() + ttl
    while (ready := api.get(f"/tts/{job['id']}").json())["status"] == "pending":
        assert time.monotonic() < deadline, f"the job was still pending after {ttl}s"
        time.sleep(0.02)
    assert ready["status"] == "ready" and ready["audio_bytes"] > 4096
    # Streamed: chunked over the socket, a WAV of the whole text.
    with api.stream("GET", ready["audio_url"]) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert r.headers.get("transfer-encoding") == "chunked"
        chunks = list(r.iter_raw())
    audio = b"".join(chunks)
    assert len(audio) == ready["audio_bytes"] and audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() > 0 and wav.getframerate() > 0
    assert api.get(f"/tts/{job['id']}").json()["status"] == "streamed"
    assert api.post(f"/tts/{job['id']}/cancel").status_code == 409
    # Expired: past its lifetime the job and its audio are gone.
    time.sleep(max(0.0, job["expires_at"] - time.time()) + 0.2)
    assert time.time() >= job["created_at"] + ttl
    assert api.get(f"/tts/{job['id']}").status_code == 404
    assert api.get(ready["audio_url"]).status_code == 404


def test_self_harm_is_escalated_and_an_escalation_can_be_filed(api, auth):
    body = api.post("/ask", json={"question": "I want to hurt myself"}, headers=auth).json()
    assert body["refused"] and body["escalation_id"]
    escalation = api.get(f"/escalations/{body['escalation_id']}").json()
    assert escalation["reason"] == "self_harm" and escalation["student_id"] == "smoke"
    filed = api.post("/escalate", json={"question": "Mail me at bo@x.io", "reason": "stuck"}, headers=auth)
    assert filed.status_code == 201
    item = filed.json()
    assert item["question"] == "Mail me at [EMAIL]" and item["status"] == "open"
    assert api.get(f"/escalations/{item['id']}").json() == item
