"""Delivery: a channel per kind of destination (`channels.py` picks it from the URL), the
engine that sends thousands at once (`engine.py`), and the outbound safety checks."""
