"""What leaves the course folder: the release notebooks and student bundles (``release``, ``bundle``), the
hosted graders (``package``: Gradescope, GitHub Classroom) and the data every lesson needs (``fetch_data``)."""
