"""The grading service: its store of students and tokens, its commands."""
