//! An OpenAPI document loaded from YAML or JSON, with its local `$ref`s
//! resolvable and its operations listed (path-level and operation-level
//! parameters merged, as the specification says).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The HTTP methods an OpenAPI path item may describe, in lower case.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `$ref` hops followed before a chain is called a loop.
const MAX_REF_HOPS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenApiVersion {
    V3_0,
    V3_1,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{path}: cannot read the contract: {message}")]
    Read { path: String, message: String },
    #[error("{path}: not valid YAML or JSON: {message}")]
    Parse { path: String, message: String },
    /// A problem at a place in the document, named by its JSON pointer.
    #[error("{path}: at {pointer}: {message}")]
    Invalid {
        path: String,
        pointer: String,
        message: String,
    },
}

/// A loaded OpenAPI document.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it was loaded from, for messages.
    pub path: PathBuf,
    pub root: Value,
    pub version: OpenApiVersion,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone)]
pub struct Operation<'d> {
    /// Upper case, as on the wire.
    pub method: String,
    /// The path template as written, e.g. `/v1/videos/{id}`.
    pub path: String,
    /// JSON pointer to the operation object.
    pub pointer: String,
    pub id: Option<String>,
    /// The operation object.
    pub node: &'d Value,
    /// Path-level and operation-level parameters, resolved; an operation's
    /// own parameter replaces a path-level one with the same name and place.
    pub parameters: Vec<Parameter<'d>>,
}

#[derive(Debug, Clone)]
pub struct Parameter<'d> {
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    pub location: String,
    pub required: bool,
    /// The parameter's schema, resolved (None if it has none).
    pub schema: Option<&'d Value>,
    /// JSON pointer to the parameter as listed (before resolving).
    pub pointer: String,
    pub node: &'d Value,
}

impl Document {
    pub fn load(path: &Path) -> Result<Document, ContractError> {
        let bytes = std::fs::read(path).map_err(|e| ContractError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Document::parse(path, &bytes)
    }

    /// Parses YAML or JSON (JSON is YAML, but its errors read better as
    /// JSON's), and checks that it is an OpenAPI 3.0 or 3.1 document.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Document, ContractError> {
        let shown = path.display().to_string();
        let root: Value = if looks_like_json(bytes) {
            serde_json::from_slice(bytes).map_err(|e| ContractError::Parse {
                path: shown.clone(),
                message: e.to_string(),
            })?
        } else {
            serde_yaml_ng::from_slice(bytes).map_err(|e| ContractError::Parse {
                path: shown.clone(),
                message: e.to_string(),
            })?
        };
        let invalid = |pointer: &str, message: String| ContractError::Invalid {
            path: shown.clone(),
            pointer: pointer.to_string(),
            message,
        };
        if !root.is_object() {
            return Err(invalid("", "the document must be an object".into()));
        }
        let version = match root.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0.") || v == "3.0" => OpenApiVersion::V3_0,
            Some(v) if v.starts_with("3.1.") || v == "3.1" => OpenApiVersion::V3_1,
            Some(v) => {
                return Err(invalid(
                    "/openapi",
                    format!("OpenAPI {v:?} is not supported (3.0 or 3.1)"),
                ));
            }
            None => {
                return Err(invalid(
                    "/openapi",
                    "missing: an OpenAPI 3.0 or 3.1 document starts with `openapi: 3.1.0`".into(),
                ));
            }
        };
        if !root.get("paths").is_some_and(Value::is_object) {
            return Err(invalid("/paths", "missing: the paths object".into()));
        }
        Ok(Document {
            path: path.to_path_buf(),
            root,
            version,
            hash: hex::encode(Sha256::digest(bytes)),
        })
    }

    /// The contract's own version (`info.version`).
    pub fn info_version(&self) -> Option<&str> {
        self.root.pointer("/info/version").and_then(Value::as_str)
    }

    fn invalid(&self, pointer: &str, message: impl Into<String>) -> ContractError {
        ContractError::Invalid {
            path: self.path.display().to_string(),
            pointer: pointer.to_string(),
            message: message.into(),
        }
    }

    /// Follows `$ref`s (local ones: `#/...`) from `v` to what they name.
    /// `at` is `v`'s pointer, for messages.
    pub fn resolve<'a>(&'a self, v: &'a Value, at: &str) -> Result<&'a Value, ContractError> {
        let mut current = v;
        for _ in 0..MAX_REF_HOPS {
            let Some(target) = current.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            let Some(pointer) = target.strip_prefix('#') else {
                return Err(self.invalid(
                    at,
                    format!("$ref {target:?} points outside the document (only local #/ references are supported)"),
                ));
            };
            current = self.root.pointer(pointer).ok_or_else(|| {
                self.invalid(at, format!("$ref {target:?} names nothing in the document"))
            })?;
        }
        Err(self.invalid(at, "$ref chain loops"))
    }

    /// Every operation, in document order of paths and method order.
    pub fn operations(&self) -> Result<Vec<Operation<'_>>, ContractError> {
        let mut ops = Vec::new();
        let Some(paths) = self.root.get("paths").and_then(Value::as_object) else {
            return Ok(ops);
        };
        for (template, item) in paths {
            let item_pointer = format!("/paths/{}", escape(template));
            if !template.starts_with('/') {
                return Err(self.invalid(&item_pointer, "a path must start with /"));
            }
            let item = self.resolve(item, &item_pointer)?;
            let shared = self.parameters(item, &item_pointer)?;
            for method in METHODS {
                let Some(node) = item.get(method) else {
                    continue;
                };
                let pointer = format!("{item_pointer}/{method}");
                let own = self.parameters(node, &pointer)?;
                let mut parameters: Vec<Parameter<'_>> = shared
                    .iter()
                    .filter(|p| {
                        !own.iter()
                            .any(|o| o.name == p.name && o.location == p.location)
                    })
                    .cloned()
                    .collect();
                parameters.extend(own);
                ops.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: template.clone(),
                    id: node
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    pointer,
                    node,
                    parameters,
                });
            }
        }
        Ok(ops)
    }

    fn parameters<'a>(
        &'a self,
        holder: &'a Value,
        at: &str,
    ) -> Result<Vec<Parameter<'a>>, ContractError> {
        let Some(list) = holder.get("parameters") else {
            return Ok(Vec::new());
        };
        let Some(list) = list.as_array() else {
            return Err(self.invalid(&format!("{at}/parameters"), "parameters must be a list"));
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let pointer = format!("{at}/parameters/{i}");
            let node = self.resolve(p, &pointer)?;
            let field = |k: &str| node.get(k).and_then(Value::as_str);
            let (Some(name), Some(location)) = (field("name"), field("in")) else {
                return Err(self.invalid(&pointer, "a parameter needs `name` and `in`"));
            };
            if !matches!(location, "path" | "query" | "header" | "cookie") {
                return Err(self.invalid(
                    &format!("{pointer}/in"),
                    format!("`in: {location}` must be path, query, header or cookie"),
                ));
            }
            let schema = match node.get("schema") {
                Some(s) => Some(self.resolve(s, &format!("{pointer}/schema"))?),
                None => None,
            };
            out.push(Parameter {
                name: name.to_string(),
                location: location.to_string(),
                required: location == "path"
                    || node
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                schema,
                pointer,
                node,
            });
        }
        Ok(out)
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Escapes a JSON-pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"
openapi: 3.1.0
info: { title: t, version: "2.1" }
paths:
  /v1/videos/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
      - $ref: "#/components/parameters/Trace"
    get:
      operationId: getVideo
      parameters:
        - { name: trace, in: header, required: true, schema: { $ref: "#/components/schemas/Trace" } }
    delete:
      operationId: deleteVideo
components:
  parameters:
    Trace: { name: trace, in: header, schema: { type: string } }
  schemas:
    Trace: { type: string, maxLength: 64 }
"##;

    #[test]
    fn operations_merge_path_and_operation_parameters() {
        let d = Document::parse(Path::new("c.yaml"), DOC.as_bytes()).unwrap();
        assert_eq!(d.version, OpenApiVersion::V3_1);
        assert_eq!(d.info_version(), Some("2.1"));
        let ops = d.operations().unwrap();
        assert_eq!(ops.len(), 2);
        let get = &ops[0];
        assert_eq!(
            (get.method.as_str(), get.id.as_deref()),
            ("GET", Some("getVideo"))
        );
        assert_eq!(get.pointer, "/paths/~1v1~1videos~1{id}/get");
        assert_eq!(
            get.parameters.len(),
            2,
            "the operation's trace replaces the path's"
        );
        let trace = get.parameters.iter().find(|p| p.name == "trace").unwrap();
        assert!(trace.required);
        assert_eq!(
            trace.schema.unwrap()["maxLength"],
            64,
            "schema $ref resolved"
        );
        let delete = &ops[1];
        assert!(
            delete
                .parameters
                .iter()
                .any(|p| p.name == "trace" && !p.required)
        );
    }

    #[test]
    fn problems_name_the_file_and_the_pointer() {
        let bad = DOC.replace(
            "#/components/parameters/Trace",
            "#/components/parameters/Nope",
        );
        let err = Document::parse(Path::new("c.yaml"), bad.as_bytes())
            .unwrap()
            .operations()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "c.yaml: at /paths/~1v1~1videos~1{id}/parameters/1: $ref \"#/components/parameters/Nope\" names nothing in the document"
        );
        let err = Document::parse(Path::new("c.json"), br#"{"openapi": "2.0", "paths": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at /openapi: OpenAPI \"2.0\" is not supported"),
            "{err}"
        );
        let err = Document::parse(Path::new("c.yaml"), b"openapi: [")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.yaml: not valid YAML or JSON"), "{err}");
    }
}
