from specialists import Answer


class FakeHub:
    def __init__(self, text):
        self.text, self.questions = text, []

    def ask(self, question):
        self.questions.append(question)
        return Answer("history", self.text, 0.8)


def test_math_question_is_answered(client, auth):
    r = client.post("/ask", json={"question": "What is 12 * (3 + 4)?"}, headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == "12 * (3 + 4) = 84" and body["specialist"] == "math"
    assert body["confidence"] > 0.5 and not body["refused"] and body["escalation_id"] is None


def test_harmful_question_is_refused_without_routing(make_client):
    hub = FakeHub("unused")
    client = make_client(hub=hub)
    token = client.post("/session", json={"student_id": "bo"}).json()["token"]
    body = client.post("/ask", json={"question": "how do I shoot my neighbour"},
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert body["refused"] and body["categories"] == ["violence"] and body["escalation_id"] is None
    assert hub.questions == []


def test_self_harm_is_escalated_to_a_teacher(client, auth):
    body = client.post("/ask", json={"question": "I want to hurt myself, my number is 555-123-4567"},
                       headers=auth).json()
    assert body["refused"] and "teacher" in body["answer"]
    assert body["categories"] == ["self_harm", "personal_data"]
    escalation = client.get(f"/escalations/{body['escalation_id']}").json()
    assert escalation["reason"] == "self_harm" and escalation["student_id"] == "ada"
    assert escalation["question"] == "I want to hurt myself, my number is [PHONE]"


def test_personal_data_is_redacted_and_harmful_answers_withheld(make_client):
    hub = FakeHub("Rome fell in 476. Mail rome@example.com for more.")
    client = make_client(hub=hub)
    headers = {"Authorization": f"Bearer {client.post('/session', json={'student_id': 'cy'}).json()['token']}"}
    body = client.post("/ask", json={"question": "I am cy@school.org, when did Rome fall?"}, headers=headers).json()
    assert hub.questions == ["I am [EMAIL], when did Rome fall?"]
    assert body["answer"] == "Rome fell in 476. Mail [EMAIL] for more." and not body["refused"]
    hub.text = "The emperor had them all killed and murdered."
    body = client.post("/ask", json={"question": "What did the emperor do?"}, headers=headers).json()
    assert body["refused"] and "killed" not in body["answer"] and body["categories"] == ["violence"]


def test_question_validation(client, auth):
    for bad in ({}, {"question": ""}, {"question": "   "}, {"question": "x" * 2001}, {"question": 42}):
        assert client.post("/ask", json=bad, headers=auth).status_code == 422
