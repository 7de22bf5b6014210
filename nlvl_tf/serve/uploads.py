"""Video files uploaded through the page: size and type checks, then content-addressed storage in a folder.

A file is accepted when its declared type is a video type (or none: browsers send none for some containers) and its
first bytes are a video container's signature; whether it decodes is the extractor's to say. Files are named by
their SHA-256, so uploading the same video twice stores it once; beyond `keep` files the oldest is deleted.
"""

import collections
import hashlib
import http
import os
import shutil
import tempfile
import threading

from nlvl_tf import workdir
from nlvl_tf.serve import rest_api

# (offset, bytes) signatures of the containers FFmpeg reads that browsers and cameras write.
CONTAINER_SIGNATURES = {
    "MP4/MOV": ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"wide"), (4, b"free")),
    "WebM/Matroska": ((0, b"\x1a\x45\xdf\xa3"),),
    "AVI": ((8, b"AVI "),),
    "Ogg": ((0, b"OggS"),),
    "MPEG-PS": ((0, b"\x00\x00\x01\xba"),),
    "FLV": ((0, b"FLV"),),
}
UNTYPED = ("", "application/octet-stream")
UNSUPPORTED = http.HTTPStatus.UNSUPPORTED_MEDIA_TYPE


def container_of(head):
    """The container name whose signature the first bytes carry, or None (MPEG-TS: sync bytes every 188)."""
    for name, signatures in CONTAINER_SIGNATURES.items():
        if any(head[offset : offset + len(magic)] == magic for offset, magic in signatures):
            return name
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG-TS"
    return None


def check_video(data, content_type):
    """Raises rest_api.ApiError (415) unless `data` looks like a video file; returns its container's name."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in UNTYPED and not declared.startswith("video/"):
        raise rest_api.ApiError(f"the upload is declared as {declared!r}, not a video (video/*)", UNSUPPORTED)
    if not data:
        raise rest_api.ApiError("the upload is empty")
    container = container_of(data[:512])
    if container is None:
        known = ", ".join([*CONTAINER_SIGNATURES, "MPEG-TS"])
        raise rest_api.ApiError(f"the upload is not a video file: its first bytes are none of {known}", UNSUPPORTED)
    return container


class Uploads:
    """Uploaded videos in `directory` (a new temporary folder by default), by id "upload-<sha256 prefix>"."""

    def __init__(self, directory=None, keep=16):
        self.directory = directory or tempfile.mkdtemp(prefix="nlvl_uploads_")
        os.makedirs(self.directory, exist_ok=True)
        self.keep = keep
        self._paths = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, data, content_type, filename=""):
        """Checks and stores an upload; returns (upload id, path)."""
        check_video(data, content_type)
        digest = hashlib.sha256(data).hexdigest()
        upload_id = f"upload-{digest[:16]}"
        extension = os.path.splitext(filename)[1].lower()
        extension = extension if extension.isascii() and extension[1:].isalnum() and len(extension) <= 6 else ".video"
        path = os.path.join(self.directory, digest + extension)
        with self._lock:
            if upload_id not in self._paths:
                workdir.write_atomically(path, data)
            self._paths[upload_id] = self._paths.get(upload_id, path)
            self._paths.move_to_end(upload_id)
            while len(self._paths) > self.keep:
                _, oldest = self._paths.popitem(last=False)
                _delete(oldest)
            return upload_id, self._paths[upload_id]

    def discard(self, upload_id):
        """Forgets an upload and deletes its file (one whose features could not be extracted), if it is kept."""
        with self._lock:
            path = self._paths.pop(upload_id, None)
            if path is not None:
                _delete(path)

    def remove(self):
        """Deletes the folder and every upload in it."""
        with self._lock:
            self._paths.clear()
            shutil.rmtree(self.directory, ignore_errors=True)

    def path(self, upload_id):
        with self._lock:
            return self._paths.get(upload_id)


def _delete(path):
    if os.path.exists(path):
        os.remove(path)
