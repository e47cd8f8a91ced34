import gzip
import http.server
import threading
from pathlib import Path

import pytest

from stages.fetch import fetch
from stages.lib.stage import StageError


@pytest.fixture
def http_source(tiny_idx):
    """Serve the tiny IDX directory on 127.0.0.1; yields the base URL."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=tiny_idx.directory, **kw)  # noqa: E731
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _dest_files(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_fetches_verified_files_from_a_directory(tiny_idx, tmp_path):
    dest = tmp_path / "raw"
    origin = fetch(tiny_idx.specs, [str(tiny_idx.directory)], dest, timeout=5)
    assert _dest_files(dest) == sorted(s.name for s in tiny_idx.specs)
    assert set(origin.values()) == {str(tiny_idx.directory)}


def test_accepts_uncompressed_files(tiny_idx, tmp_path):
    for gz in tiny_idx.directory.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    fetch(tiny_idx.specs, [str(tiny_idx.directory)], tmp_path / "raw", timeout=5)
    assert len(_dest_files(tmp_path / "raw")) == 4


def test_skips_a_missing_directory_with_a_warning(tiny_idx, tmp_path, caplog):
    missing = str(tmp_path / "nowhere")
    origin = fetch(tiny_idx.specs, [missing, str(tiny_idx.directory)], tmp_path / "raw", timeout=5)
    assert set(origin.values()) == {str(tiny_idx.directory)}
    assert f"from {missing} skipped: no such directory" in caplog.text


def test_skips_a_corrupt_copy_for_the_next_source(tiny_idx, tmp_path, caplog):
    bad = tmp_path / "bad"
    bad.mkdir()
    spec = tiny_idx.specs[0]
    good = (tiny_idx.directory / f"{spec.name}.gz").read_bytes()
    (bad / f"{spec.name}.gz").write_bytes(good[: len(good) // 2])  # truncated download
    origin = fetch(tiny_idx.specs[:1], [str(bad), str(tiny_idx.directory)], tmp_path / "raw", timeout=5)
    assert origin[spec.name] == str(tiny_idx.directory)
    assert "gzip data is truncated" in caplog.text


def test_all_sources_failing_lists_every_reason_and_writes_nothing(tiny_idx, tmp_path):
    spec = tiny_idx.specs[1]
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    # A valid IDX file, but not the one the checksum promises.
    other = bytearray(gzip.decompress((tiny_idx.directory / f"{spec.name}.gz").read_bytes()))
    other[-1] = (other[-1] + 1) % 10
    (wrong / f"{spec.name}.gz").write_bytes(gzip.compress(bytes(other)))
    dest = tmp_path / "raw"
    with pytest.raises(StageError) as err:
        fetch([spec], [str(tmp_path / "nowhere"), str(wrong)], dest, timeout=5)
    message = str(err.value)
    assert "\n" not in message
    assert f"no source has a valid {spec.name}" in message
    assert "nowhere: no such directory" in message
    assert "wrong: sha256" in message
    assert _dest_files(dest) == []


def test_downloads_from_an_http_mirror_after_a_404(tiny_idx, http_source, tmp_path, caplog):
    missing_path = f"{http_source}/not-here"
    origin = fetch(tiny_idx.specs, [missing_path, http_source], tmp_path / "raw", timeout=5)
    assert set(origin.values()) == {http_source}
    assert "HTTP 404" in caplog.text


def test_unreachable_mirror_is_reported(tiny_idx, tmp_path):
    with pytest.raises(StageError, match=r"http://127\.0\.0\.1:9/: unreachable"):
        fetch(tiny_idx.specs[:1], ["http://127.0.0.1:9/"], tmp_path / "raw", timeout=2)
