"""Where a training step's time goes: traces steps with the TensorFlow profiler and prints the self time of its ops,
by op type and by the layer that issued them.

Needs the `xprof` package to read the trace (`pip install xprof`; not a dependency of nlvl-tf). Prints one JSON object:
the step's wall time, the share of time no op ran on any thread (IDLE), and the top op types and layers by self time,
each as a share of the traced time.

    python benchmarks/profile_step.py --model=vslnet_l --n=600 [--steps=3] [--top=25] [--logdir=/tmp/profile]
"""

import collections
import glob
import json
import re
import tempfile
import time

import common
from absl import app, flags

_MODEL = flags.DEFINE_enum("model", "vslnet", ["vslbase", "vslnet", "vslnet_l"], "Model family.")
_N = flags.DEFINE_integer("n", 128, "Video length n (max_video_len).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 3, "Traced steps (after two warm-up steps).")
_TOP = flags.DEFINE_integer("top", 25, "Rows per table.")
_LOGDIR = flags.DEFINE_string("logdir", None, "Where the trace is kept (default: a temporary directory).")


def op_rows(xplane_path):
    """The profiler's framework op statistics of a trace: one dict per op (type, name, self time in us)."""
    from xprof.convert import raw_to_tool_data  # noqa: PLC0415 (optional, analysis only)

    data, _ = raw_to_tool_data.xspace_to_tool_data([xplane_path], "framework_op_stats^", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    return [{key: (cell or {}).get("v") for key, cell in zip(columns, row["c"])} for row in table["rows"]]


def layer_of(op_name):
    """The model layer an op belongs to: its name scope without the trace's call and gradient prefixes, two deep
    (e.g. `feature_encoder/self_attention`), numbering suffixes removed."""
    parts = [re.sub(r"_\d+$", "", part) for part in op_name.split("/")]
    parts = [part for part in parts if part not in ("gradient_tape", "StatefulPartitionedCall") and part]
    if parts and parts[0].startswith("vsl"):
        parts = parts[1:]
    return "/".join(parts[:2]) if len(parts) > 2 else "/".join(parts[:1]) or op_name


def shares(rows, key, top):
    totals = collections.Counter()
    for row in rows:
        totals[key(row)] += row["total_self_time"]
    whole = sum(totals.values())
    return {name: round(100.0 * value / whole, 2) for name, value in totals.most_common(top)}


def main(argv):
    del argv
    import tensorflow as tf

    _, step, batch = common.training_step(_MODEL.value, _N.value, _BATCH.value, jit_compile=False)
    for _ in range(2):
        float(step(batch)["loss"])
    logdir = _LOGDIR.value or tempfile.mkdtemp(prefix="profile_step_")
    tf.profiler.experimental.start(logdir)
    started = time.perf_counter()
    for _ in range(_STEPS.value):
        float(step(batch)["loss"])
    seconds = (time.perf_counter() - started) / _STEPS.value
    tf.profiler.experimental.stop()
    rows = op_rows(sorted(glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"))[-1])
    busy = [row for row in rows if row["type"] != "IDLE"]
    print(
        json.dumps(
            {
                "benchmark": "profile_step",
                "model": _MODEL.value,
                "n": _N.value,
                "batch_size": _BATCH.value,
                "traced_step_s": round(seconds, 4),
                "idle_percent": shares(rows, lambda row: row["type"] == "IDLE", 2).get(True, 0.0),
                "op_types_percent_of_busy": shares(busy, lambda row: row["type"], _TOP.value),
                "layers_percent_of_busy": shares(busy, lambda row: layer_of(row["operation"]), _TOP.value),
                "trace": logdir,
                "env": common.environment(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    app.run(main)
