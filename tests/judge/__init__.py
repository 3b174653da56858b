"""Grading one notebook: the engine, probes that return data, contract tables, held-out images, malformed frames."""
