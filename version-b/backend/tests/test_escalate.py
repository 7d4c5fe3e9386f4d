def test_escalation_is_created_and_readable(client, auth, clock):
    r = client.post("/escalate", json={"question": "Why is my email bo@x.io?", "reason": "confused"}, headers=auth)
    assert r.status_code == 201
    item = r.json()
    assert item["student_id"] == "ada" and item["status"] == "open" and item["created_at"] == clock.now
    assert item["question"] == "Why is my email [EMAIL]?"
    assert client.get(f"/escalations/{item['id']}").json() == item


def test_escalation_errors(client, auth):
    body = {"question": "Help", "reason": "stuck"}
    assert client.post("/escalate", json=body).status_code == 401
    assert client.post("/escalate", json={"question": "Help", "reason": " "}, headers=auth).status_code == 422
    assert client.post("/escalate", json={"reason": "stuck"}, headers=auth).status_code == 422
    assert client.get("/escalations/unknown").status_code == 404
