"""Runs experiments/serve.py as a separate process on 127.0.0.1 for the REST and page tests, and talks to it."""

import json
import pathlib
import re
import select
import subprocess
import sys
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 240


class ServerProcess:
    """experiments/serve.py with `flags` on a free port; its console goes to `log_path`."""

    def __init__(self, flags, log_path):
        self.log_path = pathlib.Path(log_path)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "experiments" / "serve.py"), "--port=0", *flags],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self):
        """Reads the one line serve.py prints when it listens."""
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"serve.py did not start: {self.log_path.read_text()[-3000:]}")
        return re.search(r"at (http://[\d.]+:\d+)/", line).group(1)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def peak_rss_mib(self):
        """The server's peak resident memory so far (VmHWM), in MiB."""
        status = pathlib.Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def log_lines(self):
        return self.log_path.read_text().splitlines()


def call(url, body=None, method=None, headers=None, timeout=60):
    """(HTTP status, parsed JSON body) of a request; `body` is a JSON-able value or bytes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def fetch(url, timeout=60):
    """(headers, body bytes) of a GET that must succeed."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.headers, response.read()
