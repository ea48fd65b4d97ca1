"""How a library error names the options its caller chose, so that each front end shows them in its own words.

A message writes an option as `name` (its Python name, in backquotes) and the error lists the names in
`options`; the CLI shows each as its flag (`--name`), a config file's reader would show the key. So a message
below the CLI never speaks of flags.
"""


class NamesOptions(Exception):
    """Base for an exception whose message names caller options as `name`, listed in `options`."""

    def __init__(self, message: str, *options: str) -> None:
        super().__init__(message)
        self.options = options
