"""A tiny Hugging Face Hub look-alike for tests: just the endpoints huggingface_hub calls.

`hf_hub_download` sends HEAD then GET to /{repo}/resolve/{revision}/{filename} and needs
X-Repo-Commit and ETag on the answer; `HfApi.get_safetensors_metadata` sends HEAD to the
same URL for model.safetensors (or model.safetensors.index.json) and then a ranged GET
for the header. Errors carry the X-Error-Code header huggingface_hub maps to its exception
classes (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo). Everything else
(/api/..., e.g. the agent-harness registry the client asks for) answers 404.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

INVALID_TOKEN = "hf_invalid"  # a token the server does not know at all
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def fake_sha(seed: str) -> str:
    """A stable 40-hex commit id."""
    return hashlib.sha1(seed.encode()).hexdigest()


def safetensors_file(
    tensors: dict[str, tuple[str, list[int]]], *, itemsize: dict[str, float]
) -> bytes:
    """A real safetensors file: 8-byte little-endian header length, JSON header, data.

    Data bytes are zeros; only the header matters to the Hub metadata readers.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        size = int(count * itemsize[dtype])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    commit: str
    branches: dict[str, str] = field(default_factory=dict)  # extra branch/tag -> commit
    gated_token: str | None = None  # gated: only this token may read it
    fail_status: int | None = None  # answer every request with this status
    delay_s: float = 0.0  # answer the first `delay_count` requests this late
    delay_count: int = 0

    def commit_for(self, revision: str) -> str | None:
        if revision in ("main", self.commit):
            return self.commit
        return self.branches.get(revision)


class HubServer:
    """Serve `repos` on 127.0.0.1 at an ephemeral port, from a daemon thread."""

    def __init__(self, repos: dict[str, FakeRepo]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop answering: later connections are refused."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path, headers))

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows failures, not access logs

    def handle(self) -> None:
        # A client that gave up (a timeout test) leaves nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.record(self.command, path, {k.lower(): v for k, v in self.headers.items()})
        match = RESOLVE.match(urlsplit(self.path).path)
        if match is None:
            return self._error(404, None, "Not Found", body=body)
        repo_id, revision, filename = (unquote(match[g]) for g in ("repo", "rev", "file"))
        if self.headers.get("Authorization") == f"Bearer {INVALID_TOKEN}":
            return self._error(401, None, "Invalid credentials in Authorization header", body=body)
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found", body=body)
        if repo.delay_count > 0:
            repo.delay_count -= 1
            time.sleep(repo.delay_s)
        if repo.fail_status is not None:
            return self._error(repo.fail_status, None, "Internal Error", body=body)
        if repo.gated_token is not None:
            auth = self.headers.get("Authorization", "")
            if not auth:
                return self._error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. "
                    "You must have access to it and be authenticated to access "
                    "it. Please log in.",
                    body=body,
                )
            if auth != f"Bearer {repo.gated_token}":
                return self._error(
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted "
                    "and you are not in the authorized list.",
                    body=body,
                )
        commit = repo.commit_for(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body=body)
        data = repo.files.get(filename)
        if data is None:
            return self._error(
                404,
                "EntryNotFound",
                f'{filename} does not exist on "{revision}"',
                body=body,
                extra={"X-Repo-Commit": commit},
            )
        etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id
        status, payload, extra = 200, data, {}
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if ranged and body:
            start = int(ranged[1])
            end = min(int(ranged[2]) if ranged[2] else len(data) - 1, len(data) - 1)
            status, payload = 206, data[start : end + 1]
            extra["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self.send_response(status)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", "application/octet-stream")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _error(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code is not None:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)
