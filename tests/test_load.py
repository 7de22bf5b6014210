"""benchmarks/load.py on a small export: 8 threads at once get exactly the sequential answers, with no error, from the
Localizer and from the raw signature (the full 8 x 200 run is the benchmark, docs/benchmarks.md)."""

import json
import os
import pathlib
import subprocess
import sys

from tests.test_export import (
    _exported,
    vocabulary_dir,  # noqa: F401 (a fixture)
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_eight_threads_get_the_sequential_answers(tmp_path, vocabulary_dir):  # noqa: F811
    _, _, export_dir = _exported(tmp_path, vocabulary_dir, "vslnet")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "load.py"),
            f"--saved_model={export_dir}",
            "--threads=8",
            "--requests_per_thread=25",
            "--inputs=16",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == 24 and report["threads"] == 8
    for caller in ("localizer", "signature"):
        assert report[caller]["requests"] == 200
        assert report[caller]["errors"] == 0 and report[caller]["mismatches"] == 0, report[caller]
        assert report[caller]["requests_per_s"] > 0 and report[caller]["p99_ms"] >= report[caller]["p50_ms"]
