//! Types shared by every blastdoor crate: the gateway's error codes and their
//! RFC 9457 rendering. Pure: no I/O, no async runtime.

pub mod error_code;
pub mod money;
pub mod problem;

pub use error_code::ErrorCode;
pub use money::{Money, Price};
pub use problem::Problem;
