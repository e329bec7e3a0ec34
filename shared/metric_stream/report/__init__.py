"""The packaging stage's outputs (SPEC step 5): the report, its brief summary and one
message per channel type drawn from the summary.

Import-light on purpose: this module imports nothing, so that a worker which only
formats messages (`report.summary`, `report.messages`) never loads reportlab or
matplotlib.
"""
