"""A sweep across machines: its options (`options`), what it checks before any work (`preflight`),
the search (`space`, `search`), its points on the work pool (`points`), watching their runs for lost
machines (`watch`), what an earlier start left (`earlier`), the leaderboard (`leaderboard`), the
search's pictures (`pictures`) and its progress in the Prefect UI (`progress`); the flow that ties
them (`flow`)."""
