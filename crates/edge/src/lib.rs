//! The n2n-rs edge: a pure control machine ([`machine`]), a pure data plane ([`tunnel`]),
//! the threads that move its bytes ([`datapath`]) and a thin tokio shell ([`runtime`]), with
//! n2n 3.x's command line ([`cli`]).

pub mod cli;
pub mod datapath;
pub mod events;
pub mod filter;
pub mod machine;
pub mod mgmt;
pub mod runtime;
pub mod tunnel;
