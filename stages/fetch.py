"""fetch: the four Fashion-MNIST IDX files into data/raw/, each verified before it is accepted."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

from stages.lib import params, paths
from stages.lib.files import write_bytes
from stages.lib.idx import FASHION_MNIST, IdxError, IdxSpec, verify
from stages.lib.sections.fetch import FetchParams
from stages.lib.stage import StageError, run_main

log = logging.getLogger("stages.fetch")


class SourceError(Exception):
    """One source could not provide one file; the message says why."""


def fetch(specs: Sequence[IdxSpec], sources: Sequence[str], dest: Path, *, timeout: float) -> dict[str, str]:
    """Put every file of `specs` into `dest`, taking each from the first source that has it intact.

    Sources are tried in order per file, so a local directory with good files means no network.
    Returns {file name: source it came from}. Raises StageError listing every source's reason
    when some file could not be had from any source.
    """
    origin = {}
    for spec in specs:
        reasons = []
        for source in sources:
            try:
                data = _read(source, spec, timeout)
                verify(data, spec)
            except (SourceError, IdxError) as exc:
                log.warning("%s from %s skipped: %s", spec.name, source, exc)
                reasons.append(f"{source}: {exc}")
                continue
            write_bytes(dest / spec.name, data)
            origin[spec.name] = source
            log.info("%s: %d bytes from %s, sha256 verified", spec.name, len(data), source)
            break
        else:
            raise StageError(f"fetch: no source has a valid {spec.name} ({'; '.join(reasons)})")
    return origin


def _read(source: str, spec: IdxSpec, timeout: float) -> bytes:
    """The decompressed bytes of `spec` from one source (a directory or a base URL)."""
    if source.startswith(("http://", "https://")):
        url = f"{source.rstrip('/')}/{spec.name}.gz"
        return _gunzip(_download(url, limit=spec.size + 1024 * 1024, timeout=timeout), spec, limit=spec.size)
    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise SourceError("no such directory")
    gz = directory / f"{spec.name}.gz"
    if gz.is_file():
        return _gunzip(gz.read_bytes(), spec, limit=spec.size)
    plain = directory / spec.name
    if plain.is_file():
        return plain.read_bytes()
    raise SourceError(f"neither {spec.name}.gz nor {spec.name} is there")


def _download(url: str, *, limit: int, timeout: float) -> bytes:
    """GET `url` with a timeout on connect and on every read, refusing bodies above `limit` bytes."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            data = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"unreachable ({reason})") from None
    if len(data) > limit:
        raise SourceError(f"response is larger than {limit} bytes")
    return data


def _gunzip(data: bytes, spec: IdxSpec, *, limit: int) -> bytes:
    try:
        out = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip container
        raw = out.decompress(data, limit + 1)
    except zlib.error as exc:
        raise SourceError(f"not a valid gzip file ({exc})") from None
    if len(raw) > limit:
        raise SourceError(f"decompresses to more than the {limit} bytes of {spec.name}")
    if not out.eof:
        raise SourceError("gzip data is truncated")
    return raw


def main() -> None:
    p = params.load("fetch", FetchParams)
    fetch(FASHION_MNIST, p["sources"], paths.RAW, timeout=p["timeout"])


if __name__ == "__main__":
    run_main(main)
