"""The notebooks under ``submissions/`` are grading fixtures (some loop forever, one is not even
JSON): pytest must never collect them as notebook tests."""

collect_ignore_glob = ["submissions/*"]
