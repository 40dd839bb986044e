//! The HTTP-over-relay requests in flight on one tunnel (SPEC A.5). The request tasks register
//! and forget their own entries and the tunnel's reader routes response chunks to them, all
//! through this shared table: no round trip through the tunnel's task per request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use super::tunnels::ResponseEvent;

/// Requests in flight, by request id, with where their response chunks go.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<Table>);

#[derive(Debug, Default)]
struct Table {
    requests: HashMap<u32, mpsc::Sender<ResponseEvent>>,
    /// Set when the tunnel closes: nothing registers any more.
    closed: bool,
}

impl InFlight {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers request `id`; `false` when the tunnel has closed.
    pub fn register(&self, id: u32, tx: mpsc::Sender<ResponseEvent>) -> bool {
        let mut table = self.table();
        if table.closed {
            return false;
        }
        table.requests.insert(id, tx);
        true
    }

    /// Forgets request `id`; whether it was still registered.
    pub fn forget(&self, id: u32) -> bool {
        self.table().requests.remove(&id).is_some()
    }

    /// Where the response chunks of request `id` go, if it is in flight.
    #[must_use]
    pub fn sender(&self, id: u32) -> Option<mpsc::Sender<ResponseEvent>> {
        self.table().requests.get(&id).cloned()
    }

    /// Whether no request is in flight.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table().requests.is_empty()
    }

    /// The tunnel closes: refuses new requests and hands back those in flight.
    pub fn close(&self) -> Vec<mpsc::Sender<ResponseEvent>> {
        let mut table = self.table();
        table.closed = true;
        table.requests.drain().map(|(_, tx)| tx).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_table_refuses_new_requests_and_returns_those_in_flight() {
        let table = InFlight::default();
        let (tx, _rx) = mpsc::channel(1);
        assert!(table.register(1, tx.clone()));
        assert!(table.register(2, tx.clone()));
        assert!(table.sender(1).is_some());
        assert!(table.forget(2));
        assert!(!table.forget(2), "forgotten once");
        assert!(!table.is_empty());
        assert_eq!(table.close().len(), 1);
        assert!(table.is_empty());
        assert!(!table.register(3, tx), "closed");
        assert!(table.sender(3).is_none());
    }
}
