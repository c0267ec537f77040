"""Recordings: fetching media from the carrier (the pipeline arrives with the console issue)."""
