//! The usage ledger's path from a settled request to the store.
//!
//! Each request that settles is appended, as one JSON line, to a local
//! spool file ([`spool`]): a single `write` to the operating system, so a
//! `kill -9` right after the response loses nothing. The [`writer`] tails
//! the spool in the background and moves records to the store in batches,
//! deleting spool files once they are stored. A store that is slow or down
//! never blocks a request: records wait in the spool (up to its size cap)
//! and the writer retries. Records carry a unique id, so a spool replayed
//! after a crash stores nothing twice.

pub mod spool;
pub mod writer;

pub use blastdoor_store::{LedgerEntry, LedgerRecord};
pub use spool::{AppendError, Spool};
pub use writer::{Writer, WriterHandle};
