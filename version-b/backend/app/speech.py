"""Speech synthesis: text in, a WAV file out. This backend has no voice model; it renders
each character as a short tone whose pitch depends on the character and the voice, so the
audio is real (any WAV reader plays it), deterministic and proportional to the text."""

import io
import math
import struct
import wave

RATE = 16_000
TONE_SECONDS = 0.04
VOICE_BASE_HZ = {"alloy": 220.0, "verse": 180.0, "sage": 260.0}


def synthesize(text: str, voice: str) -> bytes:
    base = VOICE_BASE_HZ[voice]
    samples_per_tone = int(RATE * TONE_SECONDS)
    frames = bytearray()
    for char in text:
        if char.isspace():
            frames += bytes(2 * samples_per_tone)
            continue
        hz = base * 2 ** ((ord(char) % 24) / 12)
        step = 2 * math.pi * hz / RATE
        frames += struct.pack(f"<{samples_per_tone}h",
                              *(int(8_000 * math.sin(step * i)) for i in range(samples_per_tone)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()
