def test_create_and_get_job_redacts_personal_data(client, clock):
    r = client.post("/tts", json={"text": "  Call me at 555-123-4567.  ", "voice": "sage"})
    assert r.status_code == 201
    job = r.json()
    assert job["text"] == "Call me at [PHONE]." and job["voice"] == "sage" and job["status"] == "pending"
    assert job["expires_at"] == clock.now + 30
    assert client.get(f"/tts/{job['id']}").json() == job


def test_unknown_job_is_404(client):
    assert client.get("/tts/nope").status_code == 404
    assert client.post("/tts/nope/cancel").status_code == 404
    assert client.post("/tts/nope/complete", json={"audio_url": "https://cdn/x.mp3"}).status_code == 404


def test_duplicate_job_id_is_409(client):
    assert client.post("/tts", json={"text": "Hi.", "job_id": "job-1"}).status_code == 201
    r = client.post("/tts", json={"text": "Again.", "job_id": "job-1"})
    assert r.status_code == 409 and r.json()["detail"] == "job job-1 already exists"


def test_finished_jobs_cannot_change_again(client):
    client.post("/tts", json={"text": "One.", "job_id": "a"})
    client.post("/tts", json={"text": "Two.", "job_id": "b"})
    done = client.post("/tts/a/complete", json={"audio_url": "https://cdn.example/a.mp3"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["audio_url"] == "https://cdn.example/a.mp3"
    assert client.post("/tts/a/cancel").status_code == 409
    assert client.post("/tts/b/cancel").json()["status"] == "cancelled"
    r = client.post("/tts/b/complete", json={"audio_url": "https://cdn.example/b.mp3"})
    assert r.status_code == 409 and r.json()["detail"] == "job b is already cancelled"


def test_invalid_tts_input_is_422(client):
    for bad in ({"text": ""}, {"text": "  "}, {"text": "Hi", "voice": "robot"}, {"text": "Hi", "job_id": "a/b"}):
        assert client.post("/tts", json=bad).status_code == 422, bad
    client.post("/tts", json={"text": "Hi.", "job_id": "c"})
    assert client.post("/tts/c/complete", json={"audio_url": "not a url"}).status_code == 422


def test_jobs_expire_after_ttl(client, clock):
    client.post("/tts", json={"text": "Soon gone.", "job_id": "t"})
    clock.advance(29.9)
    assert client.get("/tts/t").status_code == 200
    clock.advance(0.1)
    assert client.get("/tts/t").status_code == 404
    assert client.post("/tts/t/cancel").status_code == 404
    assert client.post("/tts", json={"text": "Reused.", "job_id": "t"}).status_code == 201
