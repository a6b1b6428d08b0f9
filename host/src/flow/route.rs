//! Where events go after the interceptor chain: the chain's output and the
//! sink fan-out's input.

use crate::contract::Batch;

/// Which sinks an event goes to: `None` means all of them, `Some` lists sink
/// indices in configuration order, each once.
pub type Route = Option<Vec<usize>>;

/// A batch on its way to the sinks: events and, in parallel, their routes.
#[derive(Debug, Default)]
pub struct RoutedBatch {
    /// Surviving events, in offset order.
    pub events: Batch,
    /// Route of each event in `events`.
    pub routes: Vec<Route>,
}
