import io
import wave

from app.speech import RATE, TONE_SECONDS, synthesize


def test_create_and_get_job_redacts_personal_data(client, clock):
    r = client.post("/tts", json={"text": "  Call me at 555-123-4567.  ", "voice": "sage"})
    assert r.status_code == 201
    job = r.json()
    assert job["text"] == "Call me at [PHONE]." and job["voice"] == "sage" and job["status"] == "pending"
    assert job["expires_at"] == clock.now + 30 and job["audio_url"] is None
    assert client.get(f"/tts/{job['id']}").json() == job


def test_a_job_is_pending_until_synthesized_then_streams_its_audio(client, worker):
    job = client.post("/tts", json={"text": "Hi there.", "job_id": "j"}).json()
    r = client.get("/tts/j/audio")
    assert r.status_code == 409 and "poll it until it is ready" in r.json()["detail"]
    worker.run()
    ready = client.get("/tts/j").json()
    audio = synthesize("Hi there.", "alloy")
    assert ready["status"] == "ready" and ready["audio_url"] == "/tts/j/audio"
    assert ready["audio_bytes"] == len(audio) > 4096
    with client.stream("GET", ready["audio_url"]) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        body = b"".join(r.iter_bytes())
    assert body == audio
    assert client.get("/tts/j").json()["status"] == "streamed"
    # Streamed audio can be fetched again; the job no longer changes.
    assert client.get("/tts/j/audio").content == audio
    assert client.post("/tts/j/cancel").status_code == 409
    assert job["status"] == "pending"


def test_the_audio_is_a_wav_as_long_as_the_text():
    with wave.open(io.BytesIO(synthesize("ab c", "verse"))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        assert wav.getnframes() == 4 * int(RATE * TONE_SECONDS)
    assert synthesize("ab", "alloy") != synthesize("ab", "sage")


def test_unknown_job_is_404(client):
    assert client.get("/tts/nope").status_code == 404
    assert client.get("/tts/nope/audio").status_code == 404
    assert client.post("/tts/nope/cancel").status_code == 404


def test_duplicate_job_id_is_409(client):
    assert client.post("/tts", json={"text": "Hi.", "job_id": "job-1"}).status_code == 201
    r = client.post("/tts", json={"text": "Again.", "job_id": "job-1"})
    assert r.status_code == 409 and r.json()["detail"] == "job job-1 already exists"


def test_a_cancelled_job_never_becomes_ready(client, worker):
    client.post("/tts", json={"text": "One.", "job_id": "a"})
    assert client.post("/tts/a/cancel").json()["status"] == "cancelled"
    worker.run()
    assert client.get("/tts/a").json()["status"] == "cancelled"
    r = client.get("/tts/a/audio")
    assert r.status_code == 409 and r.json()["detail"] == "job a is cancelled: it has no audio"
    r = client.post("/tts/a/cancel")
    assert r.status_code == 409 and r.json()["detail"] == "job a is already cancelled"


def test_invalid_tts_input_is_422(client):
    for bad in ({"text": ""}, {"text": "  "}, {"text": "Hi", "voice": "robot"}, {"text": "Hi", "job_id": "a/b"}):
        assert client.post("/tts", json=bad).status_code == 422, bad


def test_jobs_expire_after_ttl_with_their_audio(client, clock, worker):
    client.post("/tts", json={"text": "Soon gone.", "job_id": "t"})
    worker.run()
    clock.advance(29.9)
    assert client.get("/tts/t").status_code == 200
    clock.advance(0.1)
    assert client.get("/tts/t").status_code == 404
    assert client.get("/tts/t/audio").status_code == 404
    assert client.post("/tts/t/cancel").status_code == 404
    assert client.post("/tts", json={"text": "Reused.", "job_id": "t"}).status_code == 201
    assert client.get("/tts/t").json()["status"] == "pending"


def test_a_job_that_expires_before_synthesis_ends_stays_gone(client, clock, worker):
    client.post("/tts", json={"text": "Slow.", "job_id": "s"})
    clock.advance(30)
    worker.run()
    assert client.get("/tts/s").status_code == 404
