"""HTTP API. `create_app` takes its settings, clock, specialist hub and moderator
as arguments so tests can control them; `app` is the default instance."""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from guardrail import Category, Moderator
from specialists import SpecialistHub

from . import __version__, speech
from .config import Settings
from .schemas import (AskRequest, AskResponse, Escalation, EscalationRequest, JobStatus, SessionOut,
                      SessionRequest, TTSJob, TTSRequest)
from .stores import Clock, Conflict, EscalationStore, NotFound, SessionStore, TTSJobStore

# Runs a task later, off the request: synthesis happens in the background.
Worker = Callable[[Callable[[], None]], object]
AUDIO_CHUNK = 4096

REFUSAL = "I can't help with that. Let's get back to your lesson."
SUPPORT = ("I'm really sorry you're feeling this way. I've told your teacher so a person can talk "
           "with you. If you are in danger, please call your local emergency number now.")


def create_app(settings: Settings | None = None, clock: Clock = time.time,
               hub: SpecialistHub | None = None, moderator: Moderator | None = None,
               worker: Worker | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    worker = worker or ThreadPoolExecutor(max_workers=2, thread_name_prefix="tts").submit
    hub = hub or SpecialistHub()
    moderator = moderator or Moderator()
    sessions = SessionStore(settings.session_ttl, clock)
    jobs = TTSJobStore(settings.tts_ttl, clock)
    escalations = EscalationStore(clock)
    docs = settings.env != "production"
    app = FastAPI(title="Tutor backend", version=__version__,
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json" if docs else None)
    app.state.settings = settings

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    def student_session(authorization: Annotated[str | None, Header()] = None) -> SessionOut:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        try:
            return sessions.resolve(token)
        except NotFound as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    Student = Annotated[SessionOut, Depends(student_session)]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "env": settings.env, "version": __version__}

    @app.post("/session", status_code=201)
    def open_session(body: SessionRequest) -> SessionOut:
        return sessions.issue(body.student_id)

    @app.post("/ask")
    def ask(body: AskRequest, student: Student) -> AskResponse:
        """Moderate the question, route it to a specialist, moderate the answer.
        Self-harm is escalated to a teacher; personal data never leaves redacted form."""
        inbound = moderator.moderate(body.question)
        if inbound.harmful:
            escalation = None
            if Category.SELF_HARM in inbound.categories:
                escalation = escalations.create(student.student_id, inbound.redacted_text, "self_harm")
            return AskResponse(answer=SUPPORT if escalation else REFUSAL, specialist="guardrail", confidence=1.0,
                               refused=True, categories=inbound.categories,
                               escalation_id=escalation.id if escalation else None)
        answer = hub.ask(inbound.redacted_text)
        outbound = moderator.moderate(answer.text)
        categories = list(dict.fromkeys(inbound.categories + outbound.categories))
        return AskResponse(answer=REFUSAL if outbound.harmful else outbound.redacted_text,
                           specialist=answer.specialist, confidence=answer.confidence,
                           refused=outbound.harmful, categories=categories)

    @app.post("/tts", status_code=201)
    def create_tts_job(body: TTSRequest) -> TTSJob:
        """Queue speech synthesis; personal data is redacted from the text first. The job is
        pending until its audio is ready to stream."""
        job = jobs.create(moderator.moderate(body.text).redacted_text, body.voice, body.job_id)
        worker(lambda: jobs.ready(job.id, speech.synthesize(job.text, job.voice)))
        return job

    @app.get("/tts/{job_id}")
    def get_tts_job(job_id: str) -> TTSJob:
        return jobs.get(job_id)

    @app.get("/tts/{job_id}/audio")
    def stream_tts_audio(job_id: str) -> StreamingResponse:
        """The job's WAV audio, streamed in chunks; 409 while it is pending or if cancelled."""
        audio = jobs.audio(job_id)

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(audio), AUDIO_CHUNK):
                yield audio[start:start + AUDIO_CHUNK]
            jobs.streamed(job_id)

        return StreamingResponse(chunks(), media_type="audio/wav")

    @app.post("/tts/{job_id}/cancel")
    def cancel_tts_job(job_id: str) -> TTSJob:
        return jobs.cancel(job_id)

    @app.post("/escalate", status_code=201)
    def escalate(body: EscalationRequest, student: Student) -> Escalation:
        return escalations.create(student.student_id, moderator.moderate(body.question).redacted_text, body.reason)

    @app.get("/escalations/{escalation_id}")
    def get_escalation(escalation_id: str) -> Escalation:
        return escalations.get(escalation_id)

    return app


app = create_app()
