"""One module per command; each has `register(commands)` adding its subparser with a
`handler`. `COMMANDS` is the order they appear in `--help`."""

from metric_stream.cli.commands import init, schemas, serve

COMMANDS = [init, serve, schemas]
