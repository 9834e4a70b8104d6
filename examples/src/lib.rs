//! Support code of the workspace's examples, shared with the integration
//! tests that run the same scenarios (this package is not published).
//!
//! - [`integrations`]: seed 000's integration runner (`examples/integrations.rs`).
//! - [`status`]: the `/metrics` + `/status` server (`examples/status_server.rs`).
//! - [`timeline`]: the SVG timeline of the main demo (`examples/adapter.rs`).
#![warn(missing_docs)]

pub mod integrations;
pub mod status;
pub mod timeline;
