"""The `metric-stream` command line."""
