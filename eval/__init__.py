"""Citation-accuracy evaluation (issue 5)."""
