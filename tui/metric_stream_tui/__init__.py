"""metric-stream's admin console (Textual), launched by `metric-stream tui`.

It talks to the core only through the HTTP API or the composition root; the core
never imports it (an import-linter contract checks that).
"""
