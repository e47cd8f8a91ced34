"""Bad data from every kind of source: each is skipped with its reason, nothing partial is kept."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from stages.fetch import fetch
from stages.lib.idx import encode
from stages.lib.stage import StageError


class _FaultyMirror(http.server.BaseHTTPRequestHandler):
    """/ok/NAME.gz serves the good file; /missing 404s; /garbage sends junk; /truncated half a gzip."""

    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        kind, _, name = self.path.strip("/").partition("/")
        good = self.files.get(name)
        body = {
            "ok": good,
            "garbage": b"<html>not a gzip</html>" * 50,
            "truncated": good[: len(good) // 2] if good else None,
        }.get(kind)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tiny_idx):
    _FaultyMirror.files = {p.name: p.read_bytes() for p in tiny_idx.directory.glob("*.gz")}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultyMirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hanging_mirror():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("missing", "HTTP 404"), ("garbage", "not a valid gzip file"), ("truncated", "gzip data is truncated")],
)
def test_a_bad_mirror_is_skipped_for_the_next(tiny_idx, mirror, tmp_path, caplog, kind, reason):
    spec = tiny_idx.specs[0]
    origin = fetch([spec], [f"{mirror}/{kind}", f"{mirror}/ok"], tmp_path / "raw", timeout=5)
    assert origin == {spec.name: f"{mirror}/ok"}
    assert f"{spec.name} from {mirror}/{kind} skipped: {reason}" in caplog.text


def test_a_hanging_mirror_times_out(tiny_idx, hanging_mirror, tmp_path):
    start = time.monotonic()
    with pytest.raises(StageError, match=rf"{hanging_mirror}: unreachable \(.*timed out"):
        fetch(tiny_idx.specs[:1], [hanging_mirror], tmp_path / "raw", timeout=1)
    assert time.monotonic() - start < 10
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[:3] + b"\x07" + d[4:], "magic number 2055"),  # wrong magic
        (lambda d: d[:7] + bytes([d[7] + 1]) + d[8:], "header counts"),  # count that does not match
        (lambda d: d[:-1] + b"\x0c", "sha256"),  # a label outside 0-9 changes the checksum
        (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "sha256"),  # flipped byte
    ],
)
def test_damaged_idx_content_is_rejected_with_its_reason(tiny_idx, tmp_path, damage, reason):
    spec = tiny_idx.specs[1]  # labels
    bad = tmp_path / "bad"
    bad.mkdir()
    data = encode(tiny_idx.arrays[spec.name])
    (bad / f"{spec.name}.gz").write_bytes(gzip.compress(damage(data)))
    with pytest.raises(StageError) as err:
        fetch([spec], [str(bad)], tmp_path / "raw", timeout=5)
    assert reason in str(err.value) and spec.name in str(err.value) and str(bad) in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "raw" / spec.name).exists()


def test_preprocess_names_a_raw_file_with_labels_outside_0_to_9(tmp_path, monkeypatch):
    from stages import preprocess
    from stages.lib import paths

    monkeypatch.setattr(paths, "RAW", tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(encode(np.array([1, 10, 3], np.uint8)))
    with pytest.raises(StageError, match=r"train-labels-idx1-ubyte: label 10 is outside 0-9; .*dvc repro -f fetch"):
        preprocess._read_raw("train-labels-idx1-ubyte")
