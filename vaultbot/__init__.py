"""The ground every part stands on: where state and caches live, and the loopback HTTP server of our own apps."""
