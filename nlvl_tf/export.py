"""Deprecated location of `Localizer` and the export functions, kept for one release: use `nlvl_tf.serve`."""

import warnings

from nlvl_tf.serve.export import export, save  # noqa: F401
from nlvl_tf.serve.localizer import Localizer  # noqa: F401

warnings.warn(
    "nlvl_tf.export is deprecated: import Localizer from nlvl_tf.serve.localizer and export/save from "
    "nlvl_tf.serve.export",
    DeprecationWarning,
    stacklevel=2,
)
