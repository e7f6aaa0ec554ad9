"""Local emulators of destination tools over real HTTP on 127.0.0.1 (tests, demo, trials)."""
