//! Tidings' gateway: the composition root.
//!
//! It reads the configuration, connects the database, and serves the procedure registry over
//! HTTP: the tRPC adapter, the cookie session layer, health checks. It holds no business rule
//! and no SQL; it translates between the wire and `tidings-procedures`.

pub mod cli;
mod config;
pub mod demo;
mod limits;
mod listen;
mod observe;
mod rpc;
mod server;
mod session;
mod trpc;
pub mod web;

pub use config::{Config, ConfigError, Limits};
pub use server::{RunningServer, start};
pub use trpc::{ParsedRequest, parse_request};
