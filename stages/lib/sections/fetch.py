"""fetch's section of params.yaml."""

from __future__ import annotations

from stages.lib import params


class FetchParams(params.Section):
    sources: params.list_of(params.text(), what="directories or http(s) base URLs")
    """Tried in order for each file; the first with a verified copy wins."""
    timeout: params.number(0, exclusive="min")
    """Seconds per connect or read."""
