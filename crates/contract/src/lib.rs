//! Service contracts: an OpenAPI 3.0 or 3.1 document per service, loaded
//! and resolved ([`Document`]), compiled into operations that requests are
//! matched to and checked against ([`Contract`]), linted against an
//! API-standards ruleset ([`lint`]), and diffed for breaking changes
//! ([`diff`]).

pub mod calendar;
pub mod contract;
pub mod diff;
pub mod document;
pub mod lint;
pub mod matcher;
mod response;
mod schema;
mod signature;
pub mod validate;

pub use calendar::parse_date;
pub use contract::{Contract, Lookup};
pub use document::{ContractError, Document, METHODS, OpenApiVersion, Operation, Parameter};
pub use validate::{CompiledOperation, Place, RequestView, Violation};
