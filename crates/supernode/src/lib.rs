//! The n2n-rs supernode: a pure protocol machine ([`machine`]) behind a thin tokio shell
//! ([`runtime`]), with n2n 3.x's command line ([`cli`]) and management API ([`mgmt`]).

pub mod cli;
pub mod community_list;
pub mod machine;
pub mod mgmt;
pub mod regex;
pub mod runtime;
pub mod tcp;
