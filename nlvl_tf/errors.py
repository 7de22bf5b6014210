"""The project's error types: what a user's input, files or configuration caused.

Entry points (`cli.run`) print these (and the system's OSErrors) as one `error: ...` line and exit with status 2; any
other exception is a bug and keeps its traceback. Each type also derives from the built-in one a caller would catch
(`ValueError`, `FileNotFoundError`), so `except ValueError` around library calls keeps working.
"""


class UserError(Exception):
    """Something the user can fix: the message says what and where."""


class InputError(UserError, ValueError):
    """A value, file content, or combination of settings that cannot be used."""


class NotFoundError(UserError, FileNotFoundError):
    """A file, directory, dataset or checkpoint that is not there."""
