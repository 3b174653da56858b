"""What leaves the course folder: student bundles, hosted packages (Gradescope, GitHub Classroom), data."""
