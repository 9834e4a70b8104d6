//! Unit tests of the injection table.
