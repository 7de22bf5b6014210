"""Entry-point plumbing: absl's app.run with user errors and OSErrors reported as one line instead of a traceback (which
goes to the log file), and a quiet console.

Importing this module (entry points do, before TensorFlow) silences TensorFlow's C++ start-up lines unless the command
line asks for `--verbosity` >= 1 (or TF_CPP_MIN_LOG_LEVEL is set). Under `run`, the console shows the project's own
progress, warnings and results; other libraries' messages (TensorFlow, TFDS, gensim, Python warnings) only at ERROR
and above, or all of them with `--verbosity=1`. `write_log_to` keeps everything in a log file as well.
"""

import logging as python_logging
import os
import re
import sys
import tempfile

from absl import app, flags, logging

from nlvl_tf import errors

# Errors a user's input, files or configuration cause (the project's own types); anything else is a bug and keeps its
# traceback.
USER_ERRORS = (errors.UserError,)
# Faults outside the input (a multi_worker peer lost): one line too, with an exit status of their own (3), after which
# the same command resumes.
FAULTS = (ConnectionError,)
USER_ERROR_STATUS = 2
FAULT_STATUS = 3
# An OSError from the system (a permission denied on a directory the user gave, a missing file, a full disk) is one
# line naming the path as well, with the user errors' status: the user fixes it. Faults (ConnectionError is an OSError)
# are matched first.
OS_ERROR_STATUS = USER_ERROR_STATUS
# Where the project's own messages come from: the package and the entry point scripts.
_OWN_CODE = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(sys.argv[0] or ".")))


def _verbosity_requested(argv):
    """The --verbosity / -v value on a command line not parsed yet (0 when absent)."""
    for index, arg in enumerate(argv):
        match = re.fullmatch(r"(?:--verbosity|-v)(?:=(-?\d+))?", arg)
        if match:
            value = match.group(1) or (argv[index + 1] if index + 1 < len(argv) else "0")
            return int(value) if re.fullmatch(r"-?\d+", value) else 0
    return 0


def _import_tensorflow_quietly():
    """Imports TensorFlow with the process's stderr sent to a file: its native libraries print their start-up lines
    (oneDNN, CUDA drivers) before their log settings apply. Returns what they printed, for the log file."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            printed = captured.read().decode("utf-8", errors="replace")
    return printed


_VERBOSE = _verbosity_requested(sys.argv[1:]) >= 1
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _VERBOSE else "3")
_TENSORFLOW_START_UP = "" if _VERBOSE or "tensorflow" in sys.modules else _import_tensorflow_quietly()


class _ConsoleFilter(python_logging.Filter):
    """Lets through the project's own messages (INFO and up) and everyone's errors, or everything when verbose."""

    def filter(self, record):
        if flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1:
            return True
        return record.levelno >= python_logging.ERROR or (
            record.levelno >= python_logging.INFO and record.pathname.startswith(_OWN_CODE)
        )


class _ConsoleFormatter(python_logging.Formatter):
    """`message` for progress, `warning: message` / `error: message` above INFO."""

    def format(self, record):
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return message if record.levelno <= python_logging.INFO else f"{record.levelname.lower()}: {message}"


class DeferredFileHandler(python_logging.Handler):
    """Writes every record to `path`, holding them in memory until the file's directory exists (a run that stops
    before creating its workdir leaves no trace there)."""

    def __init__(self, path):
        super().__init__(python_logging.DEBUG)
        self.path = path
        self.pending = []
        self.stream = None
        self.setFormatter(
            python_logging.Formatter("%(asctime)s %(levelname)s %(name)s %(filename)s:%(lineno)d] %(message)s")
        )

    def emit(self, record):
        if self.stream is None:
            self.pending.append(record)
            if not os.path.isdir(os.path.dirname(self.path) or "."):
                return
            self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's lifetime)
            records, self.pending = self.pending, []
        else:
            records = [record]
        for item in records:
            self.stream.write(self.format(item) + "\n")
        self.stream.flush()

    def close(self):
        if self.stream is not None:
            self.stream.close()
        super().close()


def write_log_to(path):
    """Also writes every log record (all libraries, DEBUG and up) to `path` once its directory exists."""
    handler = DeferredFileHandler(path)
    python_logging.getLogger().addHandler(handler)
    if _TENSORFLOW_START_UP:
        handler.emit(
            python_logging.LogRecord(
                "tensorflow",
                python_logging.INFO,
                __file__,
                0,
                "TensorFlow start-up:\n%s",
                (_TENSORFLOW_START_UP.strip(),),
                None,
            )
        )
    python_logging.getLogger().setLevel(python_logging.DEBUG if flags.FLAGS.verbosity >= 1 else python_logging.INFO)
    return handler


def _quiet_console():
    """The absl stderr handler keeps the project's messages, without absl's prefix; library chatter goes to files."""
    handler = logging.get_absl_handler()
    handler.addFilter(_ConsoleFilter())
    handler.setFormatter(_ConsoleFormatter())
    # TensorFlow's logger gets a stderr handler of its own when it is created before the root logger has one (its
    # "INFO:tensorflow:Assets written to ..." on export); without it, its records take the filtered path above.
    tensorflow_logger = python_logging.getLogger("tensorflow")
    for own_handler in list(tensorflow_logger.handlers):
        tensorflow_logger.removeHandler(own_handler)
    tensorflow_logger.propagate = True
    python_logging.captureWarnings(True)
    python_logging.getLogger().setLevel(python_logging.DEBUG if flags.FLAGS.verbosity >= 1 else python_logging.INFO)


def reject_extra_arguments(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def _describe_os_error(error):
    """`<strerror>: <path>` (`... -> <path2>` for a rename), or the error's own text when it names no path."""
    if error.strerror is None or error.filename is None:
        return str(error)
    paths = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    return f"{error.strerror}: {paths}"


def _log_to_files(message):
    """Writes `message` with the exception being handled (its traceback) to the log files only, not the console."""
    record = python_logging.LogRecord("nlvl_tf", python_logging.ERROR, __file__, 0, message, (), sys.exc_info())
    for handler in python_logging.getLogger().handlers:
        if isinstance(handler, DeferredFileHandler):
            handler.handle(record)


def _report(error, status, message=None):
    """Prints `error: <message>` (the error's text by default) and exits with `status`; the traceback goes to the log
    file, and to the console too with NLVL_TRACEBACK=1."""
    message = str(error) if message is None else message
    if os.environ.get("NLVL_TRACEBACK"):
        logging.exception("error")
    else:
        _log_to_files(f"error: {message}")
    print(f"error: {message}", file=sys.stderr)
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
            errors.InputError(
                f"{flag.split('=')[0]}: the config has no key {key.group(1)!r}"
                + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
            ),
            USER_ERROR_STATUS,
        )


def run(main):
    """`app.run(main)` with a quiet console, printing `error: <message>` and exiting with status 2 on a user error or an
    OSError (`error: <strerror>: <path>`), 3 on a fault.

    Set NLVL_TRACEBACK=1 to see the full traceback as well.
    """

    def guarded(argv):
        _quiet_console()
        try:
            return main(argv)
        except USER_ERRORS as error:
            _report(error, USER_ERROR_STATUS)
        except FAULTS as error:
            _report(error, FAULT_STATUS)
        except OSError as error:
            _report(error, OS_ERROR_STATUS, _describe_os_error(error))

    app.run(guarded, flags_parser=_parse_flags)
