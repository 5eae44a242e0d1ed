"""Project tools that are neither the app nor its tests (run with `python -m tools.NAME`)."""
