//! A service's contract, compiled: its operations, ready to match and
//! check requests against.

use std::path::Path;

use serde_json::Value;

use crate::document::{ContractError, Document};
use crate::matcher::Matcher;
use crate::validate::CompiledOperation;

#[derive(Debug)]
pub struct Contract {
    /// `info.version`.
    pub version: Option<String>,
    /// SHA-256 of the document, hex.
    pub hash: String,
    pub operations: Vec<CompiledOperation>,
    matcher: Matcher<usize>,
    /// Path prefixes from `servers` URLs (`/v1` from
    /// `https://api.example.com/v1`), tried when a path does not match as
    /// is.
    base_paths: Vec<String>,
}

/// How a request relates to the contract.
#[derive(Debug)]
pub enum Lookup<'c> {
    /// A documented operation, with the path parameters' values.
    Operation(&'c CompiledOperation, Vec<(String, String)>),
    /// The path is documented, not for this method.
    UndocumentedMethod,
    /// No operation describes this path.
    UndocumentedPath,
}

impl Contract {
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        Contract::compile(&Document::load(path)?)
    }

    pub fn compile(doc: &Document) -> Result<Contract, ContractError> {
        let mut matcher = Matcher::new();
        let mut operations = Vec::new();
        for (i, op) in doc.operations()?.iter().enumerate() {
            matcher.add(&op.method, &op.path, i);
            operations.push(CompiledOperation::compile(doc, op, i)?);
        }
        Ok(Contract {
            version: doc.info_version().map(str::to_string),
            hash: doc.hash.clone(),
            operations,
            matcher,
            base_paths: base_paths(doc),
        })
    }

    /// The operation a request is for: `path` is the request's path as
    /// the upstream sees it (after the route's prefix is stripped).
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let candidates = std::iter::once(path).chain(
            self.base_paths
                .iter()
                .filter_map(|b| path.strip_prefix(b.as_str()))
                .filter(|rest| rest.is_empty() || rest.starts_with('/')),
        );
        let mut path_known = false;
        for candidate in candidates {
            let candidate = if candidate.is_empty() { "/" } else { candidate };
            if let Some(m) = self.matcher.find(method, candidate) {
                let op = &self.operations[*m.target];
                return Lookup::Operation(op, m.params);
            }
            path_known |= self.matcher.knows_path(candidate);
        }
        if path_known {
            Lookup::UndocumentedMethod
        } else {
            Lookup::UndocumentedPath
        }
    }
}

fn base_paths(doc: &Document) -> Vec<String> {
    let servers = doc.root.get("servers").and_then(Value::as_array);
    let mut out: Vec<String> = servers
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str))
        .filter_map(|url| {
            let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
            let path = if url.contains("://") {
                after_scheme.find('/').map(|i| &after_scheme[i..])?
            } else {
                after_scheme
            };
            let path = path.trim_end_matches('/');
            (path.starts_with('/') && !path.contains('{')).then(|| path.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
