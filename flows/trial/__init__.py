"""One point of a sweep, on whichever worker takes it: a DVC experiment in a fresh clone (`flow`)."""
