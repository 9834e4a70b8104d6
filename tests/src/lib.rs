//! What the child processes of the multi-process fleet tests share: the
//! binaries `fleet_node`, `rate_node` and `soak_node` of this crate use
//! [`node`] for everything but their own commands and answers. The
//! integration tests reach the same fleet tuning through it
//! ([`node::fast_fleet`]).

pub mod node;
