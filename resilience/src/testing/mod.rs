//! Isolated registries and assertions for tests (feature `testing`).
