"""The HTTP server behind experiments/serve.py: TF Serving's REST API for the export (`rest_api`), and the page.

Built on the standard library's `http.server.ThreadingHTTPServer` (one thread per connection, HTTP/1.1 keep-alive):
nothing to install beside TensorFlow, and enough for one person's page and local clients. It is not meant to face a
network: it binds to 127.0.0.1 unless told otherwise; serve production traffic with tensorflow_model_server, which
answers the same API from the same SavedModel.

Routes besides the API (`rest_api.ServedModel`), for the page only; predictions always go through the API:
    GET  /                              the page (index.html, page.css, page.js, served from nlvl_tf/serve/page/)
    GET  /page/config                   {model_name, api_url, dataset, split, uploads, max_upload_mb}
    GET  /page/videos                   the dataset split's videos: [{id, duration, rows, annotations, has_file}]
    GET  /page/videos/<id>/features     a video's features, float32 little-endian [rows, dim] (X-Rows, X-Dim)
    GET  /page/videos/<id>/file         the video file (byte ranges, so the player can seek)
    POST /page/uploads                  a video file as the body -> {id, duration, rows, has_file: true}
"""

import http
import json
import mimetypes
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from nlvl_tf import configs, errors
from nlvl_tf.data import splits
from nlvl_tf.serve import catalog as catalog_lib
from nlvl_tf.serve import rest_api, uploads

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
PAGE_FILES = {"/": "index.html", "/index.html": "index.html", "/page/page.css": "page.css", "/page/page.js": "page.js"}
MAX_JSON_BYTES = 256 * 2**20
# A body over its limit is read and dropped up to this size (so the client can read the 413), beyond it the
# connection is closed.
MAX_DRAIN_BYTES = 1024 * 2**20
_VIDEO_ROUTE = re.compile(r"/page/videos/(?P<id>[^/]+)/(?P<part>features|file)")
# Video types Python's mimetypes knows only from /etc/mime.types, which a machine may lack.
_MORE_TYPES = {".mkv": "video/x-matroska", ".ogv": "video/ogg", ".m4v": "video/mp4"}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Reply:
    """A response: status, body (bytes, or `file_part` = (open binary file, start, length) streamed from the file and
    closed by `write`), content type and extra headers."""

    def __init__(self, status, body=b"", content_type="application/json", headers=None, file_part=None):
        self.status = http.HTTPStatus(status)
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.file_part = file_part

    @property
    def length(self):
        return self.file_part[2] if self.file_part else len(self.body)

    def write(self, stream):
        if self.file_part is None:
            stream.write(self.body)
            return
        file, start, remaining = self.file_part
        with file:
            file.seek(start)
            while remaining > 0 and (chunk := file.read(min(remaining, 2**20))):
                stream.write(chunk)
                remaining -= len(chunk)

    @classmethod
    def json(cls, value, status=http.HTTPStatus.OK):
        return cls(status, json.dumps(value).encode("utf-8"))

    @classmethod
    def error(cls, message, status):
        return cls.json(rest_api.error_body(message), status)


class Application:
    """What the server answers: the served model, and for the page the dataset's videos, uploads and settings.

    Args:
        model: a `rest_api.ServedModel`.
        catalog: a `catalog.Catalog` of dataset videos, or None.
        video_features: function(path) -> (features [T, D], duration s) for uploads (a
            `video_features.VideoFeaturizer`), or None: no uploads.
        max_upload_bytes: the largest upload accepted.
        api_url: where the page sends predictions ("" = this server; else e.g. a tensorflow_model_server's REST
            address started with --enable_cors_support).
        cors: answer the API with CORS headers, as tensorflow_model_server --enable_cors_support does.
    """

    def __init__(self, model, catalog=None, video_features=None, max_upload_bytes=100 * 2**20, api_url="", cors=False):
        self.model = model
        self.catalog = catalog
        self.video_features = video_features
        self.uploads = uploads.Uploads() if video_features else None
        self.max_upload_bytes = max_upload_bytes
        self.api_url = api_url.rstrip("/")
        self.cors = cors

    def close(self):
        """Deletes the uploaded files."""
        if self.uploads is not None:
            self.uploads.remove()

    def config(self):
        return {
            "model_name": self.model.name,
            "api_url": self.api_url,
            "dataset": self.catalog.name if self.catalog else None,
            "split": self.catalog.split if self.catalog else None,
            "uploads": self.uploads is not None,
            "max_upload_mb": self.max_upload_bytes / 2**20,
        }

    def answer(self, method, path, request):
        """The Reply to a request; `request` reads the body (`request.body(limit)`) and headers."""
        if rest_api.ServedModel.is_api_path(path):
            if method == "OPTIONS":
                return Reply(http.HTTPStatus.NO_CONTENT, headers=self._cors_headers())
            body = request.body(MAX_JSON_BYTES) if method == "POST" else b""
            status, value = self.model.handle(method, path, body)
            reply = Reply.json(value, status)
            reply.headers.update(self._cors_headers())
            return reply
        if method == "GET" and path in PAGE_FILES:
            return _file_reply(os.path.join(PAGE_DIR, PAGE_FILES[path]), request.header("Range"))
        if method == "GET" and path == "/page/config":
            return Reply.json(self.config())
        if method == "GET" and path == "/page/videos":
            return Reply.json(self.catalog.videos() if self.catalog else [])
        if method == "POST" and path == "/page/uploads":
            return self._upload(request)
        if method == "GET" and (match := _VIDEO_ROUTE.fullmatch(path)):
            return self._video(urllib.parse.unquote(match["id"]), match["part"], request)
        return Reply.error(f"no route {method} {path}", http.HTTPStatus.NOT_FOUND)

    def _cors_headers(self):
        if not self.cors:
            return {}
        return {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "POST, GET",
            "Access-Control-Allow-Headers": "Content-Type",
        }

    def _upload(self, request):
        if self.uploads is None:
            return Reply.error(
                "uploads need an extractor: start the server with --extractor", http.HTTPStatus.NOT_FOUND
            )
        data = request.body(self.max_upload_bytes, what="upload")
        filename = urllib.parse.unquote(request.header("X-Filename") or "")
        upload_id, path = self.uploads.add(data, request.header("Content-Type"), filename)
        try:
            features, duration = self._features_of_upload(path)
        except Exception:  # not kept: it would count toward the kept uploads, and a GET would decode it again
            self.uploads.discard(upload_id)
            raise
        return Reply.json({"id": upload_id, "duration": duration, "rows": len(features), "has_file": True})

    def _features_of_upload(self, path):
        """The featurizer's answer; its user errors (a VideoReadError: the file does not decode) are 422, anything
        else is the server's fault (500, traceback in the log), not the video's."""
        try:
            return self.video_features(path)
        except errors.InputError as error:
            raise rest_api.ApiError(
                f"the upload could not be decoded as a video: {error}", http.HTTPStatus.UNPROCESSABLE_ENTITY
            ) from None

    def _video(self, video_id, part, request):
        upload_path = self.uploads.path(video_id) if self.uploads else None
        in_catalog = self.catalog is not None and video_id in self.catalog
        if upload_path is None and not in_catalog:
            return Reply.error(f"no video {video_id!r}", http.HTTPStatus.NOT_FOUND)
        try:
            return self._video_part(video_id, part, upload_path, request)
        except FileNotFoundError:
            if upload_path is None or os.path.exists(upload_path):
                raise
            # Evicted by newer uploads after it was looked up.
            return Reply.error(
                f"upload {video_id!r} is no longer kept (the server keeps the latest {self.uploads.keep}): upload it "
                "again",
                http.HTTPStatus.NOT_FOUND,
            )

    def _video_part(self, video_id, part, upload_path, request):
        if part == "file":
            path = upload_path or self.catalog.video_file(video_id)
            if path is None:
                return Reply.error(f"no file for video {video_id!r} (start the server with --videos)", 404)
            return _file_reply(path, request.header("Range"))
        features = self._features_of_upload(upload_path)[0] if upload_path else self.catalog.features(video_id)
        features = np.ascontiguousarray(features, "<f4")
        return Reply(
            http.HTTPStatus.OK,
            features.tobytes(),
            "application/octet-stream",
            {"X-Rows": str(features.shape[0]), "X-Dim": str(features.shape[1])},
        )


def _file_reply(path, range_header):
    """A file, whole or one byte range (what a video player asks for to seek), streamed when written. The file is
    opened here, so one deleted meanwhile (an upload evicted by newer ones) is still sent whole."""
    file = open(path, "rb")  # noqa: SIM115 (closed by Reply.write)
    size = os.fstat(file.fileno()).st_size
    extension = os.path.splitext(path)[1].lower()
    content_type = mimetypes.guess_type(path)[0] or _MORE_TYPES.get(extension, "application/octet-stream")
    start, end = 0, size - 1
    status = http.HTTPStatus.OK
    match = _RANGE.fullmatch(range_header.strip()) if range_header else None
    # An invalid range ("bytes=-", "bytes=5-3") is ignored: the whole file, 200 (RFC 9110 section 14.2).
    if match and size and _valid_range(*match.groups()):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start = max(0, size - int(last))
        if start > end or start >= size:
            file.close()
            return Reply(http.HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{size}"})
        status = http.HTTPStatus.PARTIAL_CONTENT
    headers = {"Accept-Ranges": "bytes"}
    if status == http.HTTPStatus.PARTIAL_CONTENT:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Reply(status, content_type=content_type, headers=headers, file_part=(file, start, end - start + 1))


def _valid_range(first, last):
    """RFC 9110's byte-range-spec (`first-[last]`, last >= first) or suffix-range (`-length`)."""
    return bool(last) if not first else not last or int(last) >= int(first)


class Handler(BaseHTTPRequestHandler):
    """One connection: parses requests, asks the Application, writes one log line per request."""

    protocol_version = "HTTP/1.1"
    server_version = "nlvl-tf"

    def setup(self):
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and the client's delayed ACK
        # hold every keep-alive response back by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_OPTIONS(self):  # noqa: N802
        self._handle("OPTIONS")

    def header(self, name):
        return self.headers.get(name)

    def body(self, limit, what="request body"):
        """The request body; refuses a missing length and one over `limit` (413, the body read and dropped)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # a chunked body cannot be skipped
            raise rest_api.ApiError(f"the {what} needs a Content-Length header", http.HTTPStatus.LENGTH_REQUIRED)
        length = int(length)
        if length > limit:
            raise rest_api.ApiError(
                f"the {what} is {length / 2**20:.1f} MiB, over the limit of {limit / 2**20:.1f} MiB",
                http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        self._unread = 0
        return self.rfile.read(length)

    def _drop_unread_body(self):
        """Reads and drops a body nobody read (a refused request), so the connection can take the next request; a
        body over MAX_DRAIN_BYTES closes the connection instead."""
        if self._unread > MAX_DRAIN_BYTES:
            self.close_connection = True
            return
        while self._unread > 0:
            chunk = self.rfile.read(min(self._unread, 2**20))
            if not chunk:
                self.close_connection = True
                break
            self._unread -= len(chunk)

    def _handle(self, method):
        started = time.perf_counter()
        path = urllib.parse.urlsplit(self.path).path
        length = self.headers.get("Content-Length", "0")
        self._unread = int(length) if length.isdigit() else 0
        try:
            reply = self.server.application.answer(method, path, self)
        except rest_api.ApiError as error:
            reply = Reply.error(error.message, error.status)
        except Exception as error:  # the server stays up; the traceback goes to the log
            traceback.print_exc(file=sys.stderr)
            reply = Reply.error(f"internal error: {type(error).__name__}: {error}", 500)
        self._drop_unread_body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        ending = ""
        try:
            reply.write(self.wfile)
        except (BrokenPipeError, ConnectionResetError):  # a player that seeks drops the range it was reading
            self.close_connection = True
            ending = " (client closed the connection)"
        milliseconds = 1000 * (time.perf_counter() - started)
        self.server.log(
            f'{self.client_address[0]} "{method} {self.path}" {reply.status.value} {reply.length}B '
            f"{milliseconds:.1f}ms{ending}"
        )

    def log_request(self, code="-", size="-"):
        """Replaced by the one line `_handle` writes."""

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        self.server.log(f"{self.client_address[0]} {format % args}")


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer answering with an Application; `log` writes one line to stderr."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, application, log_stream=None):
        try:
            super().__init__(address, Handler)
        except OSError as error:  # the port taken, an address not of this machine, a port below 1024
            raise errors.InputError(f"cannot listen on {address[0]}:{address[1]}: {error.strerror or error}") from None
        self.application = application
        self._log_stream = log_stream or sys.stderr
        self._log_lock = threading.Lock()

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def log(self, line):
        with self._log_lock:
            self._log_stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            self._log_stream.flush()


def make_application(
    saved_model,
    model_name="nlvl",
    dataset=None,
    split="test",
    data_dir=None,
    videos_dir=None,
    video_features=None,
    max_upload_mb=100.0,
    api_url="",
    cors=False,
):
    """The Application of experiments/serve.py's flags: loads the export, reads the dataset split's video list."""
    if not max_upload_mb > 0:
        raise errors.InputError(f"--max_upload_mb must be positive, got {max_upload_mb}")
    if videos_dir and not dataset:
        raise errors.InputError("--videos names the video files of a dataset: give --dataset too")
    model = rest_api.ServedModel(saved_model, model_name)
    feature_dim = model.signature_defs["serving_default"].inputs["video_features"].tensor_shape.dim[-1].size
    extracted_dim = getattr(video_features, "feature_dim", feature_dim)
    if extracted_dim != feature_dim:
        raise errors.InputError(
            f"the extractor gives {extracted_dim}-d features but the model takes {feature_dim}-d ones"
        )
    catalog = None
    if dataset:
        name, config = catalog_lib.parse_dataset(dataset)
        data_config = configs.base_config().data
        data_config.update(dataset=name, dataset_config=config, data_dir=data_dir or "")
        catalog = catalog_lib.Catalog(splits.dataset_builder(data_config), split, videos_dir)
        if catalog.feature_dim != feature_dim:
            raise errors.InputError(
                f"{catalog.name} has {catalog.feature_dim}-d features but the model takes {feature_dim}-d"
            )
    return Application(model, catalog, video_features, int(max_upload_mb * 2**20), api_url, cors)
