"""The console's screens, one module per screen (a section's list, its detail, its
dialogs). `base` holds what they share; `sections.py` says which screen opens each
section."""
