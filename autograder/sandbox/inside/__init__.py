"""The code that runs in the student's process, beside the student's code: the worker that runs the notebook
and the probes, the warm box's fork server, the channel and codec they speak, and the seccomp and Landlock
filters. Whatever it computes, the student's code can reach and forge: it imports nothing of the judge,
decides nothing, and returns data only."""
