"""report's section of params.yaml."""

from __future__ import annotations

from stages.lib import params


class ReportParams(params.Section):
    grid_size: params.integer(1, 100)
    """Test images shown per model, with their predictions."""
    top_confusions: params.integer(1, 90)
    """Most-confused class pairs listed per model."""
    seed: params.integer(0)
    """Which test images the grid shows."""
