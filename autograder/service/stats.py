"""The latest submission per student, as the instructor's API lists a class (per-task numbers:
``autograder.classroom.analytics``)."""


def latest_per_student(submissions):
    """{student: the latest graded submission ({"id", "status", "received", "score"})} of a class."""
    latest = {}
    for row in submissions:                    # in arrival order: later ones replace earlier ones
        if row["status"] in ("done", "failed"):
            latest[row["student"]] = {"id": row["id"], "status": row["status"], "received": row["received"],
                                      "score": (row["results"] or {}).get("score")}
    return latest
