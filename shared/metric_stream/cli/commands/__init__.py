"""One module per command; each has `register(commands)` adding its subparser with a
`handler`. `COMMANDS` is the order they appear in `--help`."""

from metric_stream.cli.commands import (
    deliver,
    import_csv,
    init,
    package,
    reseal,
    retention,
    run,
    schemas,
    serve,
    tui,
)

COMMANDS = [run, init, serve, tui, deliver, import_csv, retention, reseal, schemas,
            package]
