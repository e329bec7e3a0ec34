"""`metric-stream serve`: the API (and, with the cycle, its workers) in one process."""
