"""The one exception type for bad user input (config, files, arrays)."""


class InputError(ValueError):
    """Bad input: the message names the sample, the file or config field, what was expected
    and what was found. Stages raise it before writing anything."""

    def __init__(self, message: str, *, sample: str | None = None, source: str | None = None,
                 field: str | None = None, expected: str | None = None, found: object = None):
        parts = []
        if sample:
            parts.append(f"sample '{sample}'")
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        head = ": ".join(parts)
        text = f"{head}: {message}" if head else message
        if expected is not None:
            text += f" (expected {expected}, found {found!r})"
        super().__init__(text)
        self.sample, self.source, self.field = sample, source, field
        self.expected, self.found = expected, found
