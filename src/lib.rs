//! Host package of the workspace-level tests and examples; it has no code of its own.
