"""Whether layers may put XLA-compiled pieces into the graphs they trace.

Training graphs call a few small XLA-compiled functions inside otherwise plain TensorFlow graphs (the LSTM
recurrence, the attention backward pass), where XLA on CPU beats TensorFlow's op-by-op executor. A graph for a server
without XLA (tensorflow_model_server compiles nothing on CPUs unless started with a flag) must hold none: layers traced
inside `plain_graph()` compute the same values with plain TensorFlow ops.
"""

import contextlib
import threading

_tracing = threading.local()


@contextlib.contextmanager
def plain_graph():
    """Layers traced inside the block use no XLA-compiled function (same math, slower; docs/benchmarks.md)."""
    previous = in_plain_graph()
    _tracing.plain = True
    try:
        yield
    finally:
        _tracing.plain = previous


def in_plain_graph():
    """True while tracing inside `plain_graph()`."""
    return getattr(_tracing, "plain", False)
