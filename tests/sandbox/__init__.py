"""The box around the student's process: isolation, system calls, hostile submissions, forged probe results."""
