"""Settings read from the environment."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENVIRONMENTS = ("development", "test", "production")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    session_ttl: float = 3600.0
    tts_ttl: float = 600.0

    def __post_init__(self):
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"BACKEND_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.session_ttl <= 0 or self.tts_ttl <= 0:
            raise ValueError("TTLs must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        return cls(env=environ.get("BACKEND_ENV", cls.env),
                   session_ttl=float(environ.get("BACKEND_SESSION_TTL", cls.session_ttl)),
                   tts_ttl=float(environ.get("BACKEND_TTS_TTL", cls.tts_ttl)))
