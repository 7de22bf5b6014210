"""Per-query latency over HTTP: experiments/serve.py answering TF Serving predict requests, as the page sends them.

Exports a model with the authors' Charades-STA settings (random weights: speed does not depend on them), starts
serve.py on it in another process, and sends POST /v1/models/nlvl:predict requests over one keep-alive connection:
a video's features already at hand (a cached video: `--rows` rows of 1024-d features, 60 for a 30-second video with
the vslnet_charades preset) and a 6-12-word query, in the JSON a browser writes (float32 values as their shortest
double). Prints one JSON object on its last line: client latency (median, p90), the server's own time per request
(from its log), the request size, the time the server's parsing of such a body takes (JSON to float32 array), and
the server's peak RSS.

    python benchmarks/serving_http.py --n=128 --rows=60 [--signature=serving_default|details] [--xla_loop]
        [--intra_op_threads=1]
"""

import http.client
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time

import common
import numpy as np
import serving
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# --model, --n, --requests, --warmup, --xla_loop and --intra_op_threads are serving.py's flags.
FLAGS = flags.FLAGS
STARTUP_TIMEOUT_S = 600
_ROWS = flags.DEFINE_integer("rows", 60, "Feature rows of the video sent (60: a 30-second video, vslnet_charades).")
_SIGNATURE = flags.DEFINE_enum("signature", "serving_default", ["serving_default", "details"], "Signature asked.")


def start_server(export_dir, log_path, *flags):
    """serve.py on a free port, its console in `log_path`; returns (process, port). Raises RuntimeError, with the
    console's end, when it does not start."""
    with open(log_path, "w") as log:  # the server writes to its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                os.path.join(REPO, "experiments", "serve.py"),
                f"--saved_model={export_dir}",
                "--port=0",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO),
        )
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        process.wait()
        with open(log_path) as log:
            raise RuntimeError(f"serve.py did not start (exit status {process.returncode}): {log.read()[-3000:]}")
    return process, int(re.search(r":(\d+)/", line).group(1))


def request_bodies(config, rows, count, signature, seed=0):
    rng = np.random.default_rng(seed)
    dim = config.model.video_feature_dim
    bodies = []
    for _ in range(count):
        features = rng.normal(size=(rows, dim)).astype(np.float32)
        query = " ".join(rng.choice(serving.WORDS, size=rng.integers(6, 13))) + "."
        inputs = {"video_features": [features.tolist()], "video_length": [rows], "duration": [rows / 2.0]}
        bodies.append(json.dumps({"signature_name": signature, "inputs": {**inputs, "query": [query]}}).encode())
    return bodies


def parse_seconds(bodies):
    """Median seconds the server's parsing of a body takes: JSON to the float32 array."""
    from nlvl_tf.serve import rest_api  # noqa: PLC0415 (after absl parsed the flags)

    durations = []
    for body in bodies:
        started = time.perf_counter()
        rest_api.to_array(rest_api.parse_json(body)["inputs"]["video_features"], rest_api.types_pb2.DT_FLOAT, "x")
        durations.append(time.perf_counter() - started)
    return float(np.median(durations))


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as directory:
        export_dir, config = serving.export_benchmark_model(FLAGS.model, FLAGS.n, directory, FLAGS.xla_loop)
        log_path = os.path.join(directory, "server.log")
        process, port = start_server(export_dir, log_path, f"--intra_op_threads={FLAGS.intra_op_threads}")
        try:
            bodies = request_bodies(config, _ROWS.value, FLAGS.warmup + FLAGS.requests, _SIGNATURE.value)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            latencies = []
            for index, body in enumerate(bodies):
                started = time.perf_counter()
                connection.request("POST", "/v1/models/nlvl:predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {answer[:300]}")
                if index >= FLAGS.warmup:
                    latencies.append(time.perf_counter() - started)
            with open(f"/proc/{process.pid}/status") as status:
                peak_rss_mib = int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1)) / 1024
        finally:
            process.terminate()
            process.wait()
        with open(log_path) as log:
            server_ms = [float(m.group(1)) for m in re.finditer(r'predict" 200 \d+B ([\d.]+)ms', log.read())]
    latencies = np.asarray(latencies) * 1000
    print(
        json.dumps(
            {
                "benchmark": "serving_http",
                "model": FLAGS.model,
                "n": FLAGS.n,
                "rows": _ROWS.value,
                "signature": _SIGNATURE.value,
                "xla_loop": FLAGS.xla_loop,
                "intra_op_threads": FLAGS.intra_op_threads or "default",
                "requests": FLAGS.requests,
                "median_ms": float(np.median(latencies)),
                "p90_ms": float(np.percentile(latencies, 90)),
                "server_median_ms": float(np.median(server_ms[FLAGS.warmup :])),
                "request_mb": len(bodies[0]) / 1e6,
                "json_parse_median_ms": 1000 * parse_seconds(bodies[:20]),
                "server_peak_rss_mib": peak_rss_mib,
                "env": common.environment(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
