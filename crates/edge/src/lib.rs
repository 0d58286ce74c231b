//! The n2n-rs edge: a pure protocol machine ([`machine`]), a threaded data path
//! ([`datapath`]) and a thin tokio shell ([`runtime`]), with n2n 3.x's command line ([`cli`]).

pub mod cli;
pub mod datapath;
pub mod events;
pub mod filter;
pub mod machine;
pub mod mgmt;
pub mod runtime;
