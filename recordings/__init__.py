"""Recordings: callbacks → fetch → check → convert (pydub/ffmpeg) → encrypt → store → verify →
delete at the carrier; range playback; retention. See docs/ARCHITECTURE.md, "Recordings"."""
