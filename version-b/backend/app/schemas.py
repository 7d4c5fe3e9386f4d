"""Request and response models."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class SessionRequest(BaseModel):
    student_id: Identifier


class SessionOut(BaseModel):
    token: str
    student_id: str
    expires_at: float


class AskRequest(BaseModel):
    question: Text


class AskResponse(BaseModel):
    answer: str
    specialist: str
    confidence: float
    refused: bool
    categories: list[str]
    escalation_id: str | None = None


class JobStatus(StrEnum):
    """pending -> ready (audio synthesized) -> streamed (audio fetched at least once), or
    pending -> cancelled. Any job is gone once it expires."""
    PENDING = "pending"
    READY = "ready"
    STREAMED = "streamed"
    CANCELLED = "cancelled"


class TTSRequest(BaseModel):
    text: Text
    voice: Literal["alloy", "verse", "sage"] = "alloy"
    job_id: Identifier | None = None


class TTSJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    voice: str
    status: JobStatus = JobStatus.PENDING
    audio_url: str | None = None  # where the audio streams from, once ready
    audio_bytes: int | None = None
    created_at: float
    expires_at: float


class EscalationRequest(BaseModel):
    question: Text
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Escalation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    student_id: str
    question: str
    reason: str
    status: Literal["open"] = "open"
    created_at: float = Field(ge=0)
