"""Entry-point plumbing: absl's app.run with user errors reported as one line instead of a traceback."""

import os
import sys

from absl import app
from absl import logging

# Errors a user's input or files cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, PermissionError, UnicodeError)


def reject_extra_arguments(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def run(main):
    """`app.run(main)`, printing `error: <message>` and exiting with status 2 on a user error.

    Set NLVL_TRACEBACK=1 to see the full traceback as well.
    """

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as error:
            if os.environ.get("NLVL_TRACEBACK"):
                logging.exception("user error")
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)
