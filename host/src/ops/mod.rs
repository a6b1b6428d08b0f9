//! Operating pipelines: starting and checking them ([`pipeline`]),
//! replacing their components while they run ([`reload`]), and the admin
//! endpoint ([`admin`]) with its health checks and Prometheus metrics
//! ([`metrics`]).

pub mod admin;
pub mod metrics;
pub mod pipeline;
pub mod reload;
