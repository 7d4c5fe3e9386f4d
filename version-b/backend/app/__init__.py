"""Tutoring backend: sessions, guarded questions, TTS jobs and teacher escalations."""

__version__ = "0.1.0"
