"""A sweep across machines: its options (`options`), what it checks before any work (`preflight`),
the search (`space`, `search`), its points on the work pool (`points`), watching their runs for lost
machines (`watch`), what an earlier start left (`earlier`), and the leaderboard (`leaderboard`);
the flow that ties them (`flow`)."""
