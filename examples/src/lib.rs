//! Support code of the workspace's examples, shared with the integration
//! tests (`tests/`) that run the same scenarios (this crate is not published).
//!
//! - [`integrations`]: a runner of integrations in parallel, one breaker and timeout each (`examples/integrations.rs`).
//! - `status` (feature `status`): the `/metrics` + `/status` server
//!   (`examples/status_server.rs`).
//! - [`timeline`]: the SVG timeline of the main demo (`examples/adapter.rs`).
#![warn(missing_docs)]

pub mod integrations;
#[cfg(feature = "status")]
pub mod status;
pub mod timeline;
