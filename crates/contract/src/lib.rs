//! Service contracts: an OpenAPI 3.0 or 3.1 document per service, loaded
//! and resolved ([`Document`]), its operations listed for matching and
//! validation, linted, and diffed for breaking changes.

pub mod diff;
pub mod document;

pub use document::{ContractError, Document, METHODS, OpenApiVersion, Operation, Parameter};
