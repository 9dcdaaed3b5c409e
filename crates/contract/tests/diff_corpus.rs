//! The diff corpus: `diff-corpus/NN-name/{old,new}.{yaml,json}` with
//! `expected.json` giving the verdict, the exact set of rule ids, and for
//! some pairs the pointers of particular findings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use blastdoor_contract::Document;
use blastdoor_contract::diff::{self, Finding, Format, RULES, Report, render};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff-corpus")
}

fn pairs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `old.yaml` or `old.json` (likewise `new`).
fn load(dir: &Path, stem: &str) -> Document {
    ["yaml", "json"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|p| p.exists())
        .map(|p| Document::load(&p).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|| panic!("{}: no {stem}.yaml or {stem}.json", dir.display()))
}

fn expected(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn rule_set(report: &Report) -> BTreeSet<&str> {
    report.findings.iter().map(|f| f.rule).collect()
}

/// Whether `f` is the finding `want` describes (every field it gives).
fn matches(f: &Finding, want: &Value) -> bool {
    let field = |name: &str, got: Option<&str>| match want.get(name) {
        None => true,
        Some(Value::Null) => got.is_none(),
        Some(v) => v.as_str() == got,
    };
    field("rule", Some(f.rule))
        && field("operation", Some(&f.operation))
        && field("old_pointer", f.old_pointer.as_deref())
        && field("new_pointer", f.new_pointer.as_deref())
}

fn check_pair(dir: &Path) -> Result<(), String> {
    let report = diff::diff(&load(dir, "old"), &load(dir, "new")).map_err(|e| e.to_string())?;
    let want = expected(dir);
    let want_rules: BTreeSet<&str> = want["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    if want["breaking"].as_bool() != Some(report.breaking()) {
        problems.push(format!(
            "breaking: expected {}, got {}",
            want["breaking"],
            report.breaking()
        ));
    }
    if want_rules != rule_set(&report) {
        problems.push(format!(
            "rules: expected {want_rules:?}, got {:?}",
            rule_set(&report)
        ));
    }
    for f in want
        .get("findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !report.findings.iter().any(|got| matches(got, f)) {
            problems.push(format!("no finding like {f}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            problems.join("\n"),
            render(&report, Format::Text)
        ))
    }
}

#[test]
fn every_pair_has_its_expected_verdict_and_rules() {
    let pairs = pairs();
    assert!(pairs.len() >= 40, "the corpus has {} pairs", pairs.len());
    let failures: Vec<String> = pairs
        .iter()
        .filter_map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            check_pair(dir).err().map(|e| format!("--- {name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_exercises_every_rule_and_only_known_ones() {
    let mut used = BTreeSet::new();
    for dir in pairs() {
        for r in expected(&dir)["rules"].as_array().unwrap() {
            let id = r.as_str().unwrap().to_string();
            assert!(
                diff::rule(&id).is_some(),
                "{}: unknown rule {id}",
                dir.display()
            );
            used.insert(id);
        }
    }
    let unused: Vec<&str> = RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !used.contains(*id))
        .collect();
    assert!(
        unused.is_empty(),
        "rules no corpus pair expects: {unused:?}"
    );
}

#[test]
fn every_document_is_unchanged_against_itself() {
    for dir in pairs() {
        for stem in ["old", "new"] {
            let doc = load(&dir, stem);
            let report = diff::diff(&doc, &doc).unwrap();
            assert_eq!(report, Report::default(), "{}/{stem}", dir.display());
        }
    }
}

/// Any two documents compare without a panic, and render in every format.
#[test]
fn any_two_corpus_documents_diff_cleanly() {
    let (olds, news): (Vec<Document>, Vec<Document>) = pairs()
        .iter()
        .map(|dir| (load(dir, "old"), load(dir, "new")))
        .unzip();
    for old in &olds {
        for new in &news {
            let report = diff::diff(old, new).unwrap();
            for format in [Format::Text, Format::Json, Format::Markdown] {
                assert!(!render(&report, format).is_empty());
            }
        }
    }
}

fn parse(text: &str) -> Document {
    Document::parse(Path::new("t.yaml"), text.as_bytes()).unwrap()
}

/// Schemas that are not schemas, keywords of the wrong type, `$ref` loops
/// through `allOf`: findings or nothing, never a panic.
#[test]
fn malformed_schemas_are_reported_not_panicked_on() {
    let old = parse(
        r##"
openapi: 3.1.0
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: {a: 5, b: {type: 7}, c: {enum: 3, required: x}, d: {$ref: "#/components/schemas/Loop"}}
              required: [a, 3]
      responses:
        "200": {description: ok, content: {application/json: {schema: [1, 2]}}}
        "2xx": {description: ok}
components:
  schemas:
    Loop: {allOf: [{$ref: "#/components/schemas/Loop"}], properties: {next: {$ref: "#/components/schemas/Loop"}}}
"##,
    );
    let new = parse(
        r##"
openapi: 3.1.0
paths:
  /x:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: {a: "x", b: {type: [7, string]}, c: {enum: [1], minLength: -1, maxLength: 1e400}, d: {$ref: "#/components/schemas/Loop"}}
              required: 5
              additionalProperties: 12
      responses:
        "200": {description: ok, content: {application/json: {schema: {oneOf: 3}}}}
components:
  schemas:
    Loop: {allOf: [{$ref: "#/components/schemas/Loop"}, {}], properties: {next: {$ref: "#/components/schemas/Loop"}, other: false}}
"##,
    );
    let report = diff::diff(&old, &new).unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule == "schema-changed-unanalysed")
    );
    let back = diff::diff(&new, &old).unwrap();
    assert!(!back.findings.is_empty());
}

#[test]
fn document_problems_are_errors_naming_the_place() {
    let good =
        parse("openapi: 3.1.0\npaths: {/x: {get: {responses: {'200': {description: ok}}}}}\n");
    let dangling = parse(
        "openapi: 3.1.0\npaths: {/x: {get: {responses: {'200': {$ref: '#/components/responses/Nope'}}}}}\n",
    );
    let err = diff::diff(&good, &dangling).unwrap_err().to_string();
    assert!(err.contains("/paths/~1x/get/responses/200"), "{err}");
    assert!(err.contains("names nothing"), "{err}");
}

/// A chain of 200 distinct schemas, each a property of the one before:
/// the walk stops at its depth limit instead of exhausting the stack.
#[test]
fn long_schema_chains_stop_at_the_depth_limit() {
    let chain = |last: &str| {
        let mut schemas = String::new();
        for i in 0..200 {
            schemas.push_str(&format!(
                "    S{i}: {{type: object, properties: {{next: {{$ref: \"#/components/schemas/S{}\"}}}}}}\n",
                i + 1
            ));
        }
        schemas.push_str(&format!("    S200: {{type: {last}}}\n"));
        parse(&format!(
            "openapi: 3.1.0\npaths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/S0'}}\ncomponents:\n  schemas:\n{schemas}"
        ))
    };
    let report = diff::diff(&chain("string"), &chain("integer")).unwrap();
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
    assert_eq!(
        rules,
        ["schema-changed-unanalysed"],
        "a change below the limit is not lost"
    );
    let unchanged = diff::diff(&chain("string"), &chain("string")).unwrap();
    assert_eq!(unchanged, Report::default(), "nor is one invented");
}
