"""Entry-point plumbing: absl's app.run with user errors reported as one line instead of a traceback."""

import os
import re
import sys

from absl import app, logging

# Errors a user's input or files cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, PermissionError, UnicodeError)
# Faults outside the input (a multi_worker peer lost): one line too, with an exit status of their own (3), after which
# the same command resumes.
FAULTS = (ConnectionError,)
USER_ERROR_STATUS = 2
FAULT_STATUS = 3


def reject_extra_arguments(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def _message(error):
    return error.args[0] if isinstance(error, KeyError) and error.args else error


def _report(error, status):
    if os.environ.get("NLVL_TRACEBACK"):
        logging.exception("error")
    print(f"error: {_message(error)}", file=sys.stderr)
    sys.exit(status)


def _parse_flags(argv):
    """absl's flag parsing, with an override of a config key that does not exist (`--config.hiden_size=3`, refused
    by the locked ConfigDict with an AttributeError) reported as a user error that names the flag."""
    try:
        return app.parse_flags_with_usage(argv)
    except AttributeError as error:
        key = re.match(r"\W*(\w+)", str(error))
        flag = key and next((arg for arg in argv[1:] if re.match(rf"--\w+(\.\w+)*\.{key.group(1)}(=|$)", arg)), None)
        if not flag:
            raise
        hint = re.search(r'Did you mean "(\w+)"', str(error))
        _report(
            ValueError(
                f"{flag.split('=')[0]}: the config has no key {key.group(1)!r}"
                + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
            ),
            USER_ERROR_STATUS,
        )


def run(main):
    """`app.run(main)`, printing `error: <message>` and exiting with status 2 on a user error (3 on a fault).

    Set NLVL_TRACEBACK=1 to see the full traceback as well.
    """

    def guarded(argv):
        try:
            return main(argv)
        except USER_ERRORS as error:
            _report(error, USER_ERROR_STATUS)
        except FAULTS as error:
            _report(error, FAULT_STATUS)

    app.run(guarded, flags_parser=_parse_flags)
