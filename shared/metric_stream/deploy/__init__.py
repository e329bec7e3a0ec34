"""Deploying metric-stream to AWS Lambda: the stack (`stack.py`) and the build (`package.py`)."""
