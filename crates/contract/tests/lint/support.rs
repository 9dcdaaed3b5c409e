//! What the lint tests share: the clean contract every test edits, and
//! linting a document given as JSON.
#![allow(dead_code)] // each test binary uses a part

use std::path::Path;

use blastdoor_contract::Document;
use blastdoor_contract::lint::{self, Finding};
use serde_json::Value;

const GOOD: &str = include_str!("good.yaml");

pub fn good() -> Value {
    serde_yaml_ng::from_str(GOOD).unwrap()
}

pub fn lint_with(v: &Value, disabled: &[&str]) -> Vec<Finding> {
    let doc = Document::parse(Path::new("c.json"), v.to_string().as_bytes()).unwrap();
    let disabled: Vec<String> = disabled.iter().map(|s| s.to_string()).collect();
    lint::lint(&doc, &disabled)
}

/// The findings of the good document after `edit`, as (rule, pointer).
pub fn after(edit: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
    let mut v = good();
    edit(&mut v);
    lint_with(&v, &[])
        .into_iter()
        .map(|f| (f.rule.to_string(), f.pointer))
        .collect()
}

pub fn found(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, p)| (r.to_string(), p.to_string()))
        .collect()
}

pub fn one(rule: &str, pointer: &str) -> Vec<(String, String)> {
    found(&[(rule, pointer)])
}

pub fn at<'v>(v: &'v mut Value, pointer: &str) -> &'v mut Value {
    v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer}"))
}

pub fn split(pointer: &str) -> (&str, String) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    (parent, key.replace("~1", "/").replace("~0", "~"))
}

pub fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = split(pointer);
    at(v, parent).as_object_mut().unwrap().insert(key, value);
}

pub fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = split(pointer);
    match at(v, parent) {
        Value::Object(map) => {
            map.remove(&key).unwrap();
        }
        Value::Array(list) => {
            list.remove(key.parse().unwrap());
        }
        _ => panic!("{parent} holds nothing to remove"),
    }
}

pub fn push(v: &mut Value, pointer: &str, value: Value) {
    at(v, pointer).as_array_mut().unwrap().push(value);
}

pub const CREATE: &str = "/paths/~1v1~1images/post";
pub const LIST: &str = "/paths/~1v1~1images/get";
pub const GET: &str = "/paths/~1v1~1images~1{id}/get";
pub const CANCEL: &str = "/paths/~1v1~1image-variations~1{id}:cancel/post";
pub const HEALTH: &str = "/paths/~1healthz/get";
pub const REQUEST: &str = "/components/schemas/ImageRequest";
