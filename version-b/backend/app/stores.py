"""In-memory stores. Time comes from an injectable clock, so expiry is testable."""

import secrets
import threading
import uuid
from collections.abc import Callable

from .schemas import Escalation, JobStatus, SessionOut, TTSJob

Clock = Callable[[], float]


class NotFound(LookupError):
    pass


class Conflict(Exception):
    pass


class SessionStore:
    def __init__(self, ttl: float, clock: Clock):
        self.ttl, self.clock = ttl, clock
        self._sessions: dict[str, SessionOut] = {}
        self._lock = threading.Lock()

    def issue(self, student_id: str) -> SessionOut:
        session = SessionOut(token=secrets.token_urlsafe(24), student_id=student_id,
                             expires_at=self.clock() + self.ttl)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def resolve(self, token: str) -> SessionOut:
        """The live session for `token`; expired sessions are forgotten."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                raise NotFound("unknown session")
            if self.clock() >= session.expires_at:
                del self._sessions[token]
                raise NotFound("session expired")
            return session


class TTSJobStore:
    """Text-to-speech jobs (see `JobStatus`): each is gone after `ttl`, with its audio."""

    def __init__(self, ttl: float, clock: Clock):
        self.ttl, self.clock = ttl, clock
        self._jobs: dict[str, TTSJob] = {}
        self._audio: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _purge(self) -> None:
        now = self.clock()
        for job_id in [j.id for j in self._jobs.values() if now >= j.expires_at]:
            del self._jobs[job_id]
            self._audio.pop(job_id, None)

    def _live(self, job_id: str) -> TTSJob:
        self._purge()
        if job_id not in self._jobs:
            raise NotFound(f"job {job_id} not found")
        return self._jobs[job_id]

    def _set(self, job: TTSJob, **update) -> TTSJob:
        self._jobs[job.id] = job = job.model_copy(update=update)
        return job

    def create(self, text: str, voice: str, job_id: str | None = None) -> TTSJob:
        with self._lock:
            self._purge()
            job_id = job_id or uuid.uuid4().hex
            if job_id in self._jobs:
                raise Conflict(f"job {job_id} already exists")
            now = self.clock()
            job = TTSJob(id=job_id, text=text, voice=voice, created_at=now, expires_at=now + self.ttl)
            self._jobs[job_id] = job
            return job

    def get(self, job_id: str) -> TTSJob:
        with self._lock:
            return self._live(job_id)

    def ready(self, job_id: str, audio: bytes) -> None:
        """The synthesizer's result; dropped if the job was cancelled or expired meanwhile."""
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            if job is not None and job.status is JobStatus.PENDING:
                self._audio[job_id] = audio
                self._set(job, status=JobStatus.READY, audio_url=f"/tts/{job_id}/audio", audio_bytes=len(audio))

    def cancel(self, job_id: str) -> TTSJob:
        with self._lock:
            job = self._live(job_id)
            if job.status is not JobStatus.PENDING:
                raise Conflict(f"job {job_id} is already {job.status.value}")
            return self._set(job, status=JobStatus.CANCELLED)

    def audio(self, job_id: str) -> bytes:
        with self._lock:
            job = self._live(job_id)
            if job_id not in self._audio:
                raise Conflict(f"job {job_id} is {job.status.value}: it has no audio"
                               + (" yet; poll it until it is ready" if job.status is JobStatus.PENDING else ""))
            return self._audio[job_id]

    def streamed(self, job_id: str) -> None:
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            if job is not None and job.status is JobStatus.READY:
                self._set(job, status=JobStatus.STREAMED)


class EscalationStore:
    def __init__(self, clock: Clock):
        self.clock = clock
        self._items: dict[str, Escalation] = {}
        self._lock = threading.Lock()

    def create(self, student_id: str, question: str, reason: str) -> Escalation:
        item = Escalation(id=uuid.uuid4().hex, student_id=student_id, question=question,
                          reason=reason, created_at=self.clock())
        with self._lock:
            self._items[item.id] = item
        return item

    def get(self, escalation_id: str) -> Escalation:
        with self._lock:
            if escalation_id not in self._items:
                raise NotFound(f"escalation {escalation_id} not found")
            return self._items[escalation_id]
