//! Budgets: an amount per UTC period on a key, a team or a service, held
//! in memory so admission never waits on the store.
//!
//! Admission *reserves* an estimate of the request's cost on every budget
//! that applies, before the request is forwarded; a hard budget refuses the
//! request if the reservation does not fit. When the request settles the
//! reservation is replaced by the real cost. Spend can therefore pass a
//! hard budget only by what requests already in flight cost beyond their
//! reservations: with reservations at or above the real cost (the default
//! for model meters with `max_tokens`, or a configured `reserve`), never.

pub mod alert;
pub mod book;
pub mod ops;
pub mod period;
mod shared;

pub use alert::Alert;
pub use book::{Book, Budget, Exceeded, Reservation};
pub use period::Period;
