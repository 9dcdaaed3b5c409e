use serde_json::Value;

use super::*;
use crate::diff::rules::{self, Rule};

fn finding(rule: &Rule, old: Option<&str>, new: Option<&str>, message: &str) -> Finding {
    Finding {
        rule: rule.id,
        severity: rule.severity,
        operation: "POST /v1/images".into(),
        operation_id: Some("createImage".into()),
        old_pointer: old.map(String::from),
        new_pointer: new.map(String::from),
        message: message.into(),
    }
}

fn sample() -> Report {
    Report {
        findings: vec![
            finding(
                &rules::REQUEST_PROPERTY_BECAME_REQUIRED,
                Some("/components/schemas/Image/properties/size"),
                Some("/components/schemas/Image/properties/size"),
                "request body (application/json): property `size` is now required",
            ),
            finding(
                &rules::RESPONSE_ENUM_WIDENED,
                Some(
                    "/paths/~1v1~1images/post/responses/200/content/application~1json/schema/enum",
                ),
                Some(
                    "/paths/~1v1~1images/post/responses/200/content/application~1json/schema/enum",
                ),
                "response 200 (application/json): the value may now be \"webp\"",
            ),
            finding(
                &rules::OPERATION_ADDED,
                None,
                Some("/paths/~1v1~1images~1{id}/get"),
                "the operation was added | with a pipe and <b>html</b> outside `a<b>` code",
            ),
        ],
    }
}

#[test]
fn text_is_one_line_per_finding_and_a_summary() {
    let out = render(&sample(), Format::Text);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        lines[0],
        "BREAKING request-property-became-required POST /v1/images (createImage): \
         request body (application/json): property `size` is now required \
         old: /components/schemas/Image/properties/size new: /components/schemas/Image/properties/size"
    );
    assert!(lines[1].starts_with("WARNING response-enum-widened POST /v1/images (createImage): "));
    assert!(
        lines[2].ends_with(" new: /paths/~1v1~1images~1{id}/get") && !lines[2].contains(" old: "),
        "a pointer that is not there is left out: {}",
        lines[2]
    );
    assert_eq!(lines[3], "1 breaking, 1 warning, 1 info");
    assert_eq!(render(&Report::default(), Format::Text), "no changes\n");
}

#[test]
fn json_has_the_verdict_and_every_field() {
    let v: Value = serde_json::from_str(&render(&sample(), Format::Json)).unwrap();
    assert_eq!(v["breaking"], true);
    assert_eq!(
        v["counts"],
        serde_json::json!({"breaking": 1, "warning": 1, "info": 1})
    );
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "request-property-became-required");
    assert_eq!(f["severity"], "breaking");
    assert_eq!(f["operation"], "POST /v1/images");
    assert_eq!(f["operation_id"], "createImage");
    assert_eq!(
        f["old_pointer"],
        "/components/schemas/Image/properties/size"
    );
    assert_eq!(
        f["new_pointer"],
        "/components/schemas/Image/properties/size"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("`size` is now required")
    );
    assert_eq!(v["findings"][2]["old_pointer"], Value::Null);

    let empty: Value = serde_json::from_str(&render(&Report::default(), Format::Json)).unwrap();
    assert_eq!(empty["breaking"], false);
    assert_eq!(empty["findings"], serde_json::json!([]));
}

#[test]
fn markdown_is_a_summary_a_table_and_folded_compatible_changes() {
    let out = render(&sample(), Format::Markdown);
    assert!(
        out.starts_with(
            "### API contract diff\n\n**Breaking changes found**: 1 breaking, 1 warning, 1 info.\n"
        ),
        "{out}"
    );
    assert!(out.contains(
        "| Severity | Rule | Operation | Change | Old | New |\n|---|---|---|---|---|---|\n"
    ));
    assert!(out.contains(
        "| breaking | `request-property-became-required` | POST /v1/images (createImage) | \
         request body (application/json): property `size` is now required | \
         `/components/schemas/Image/properties/size` | `/components/schemas/Image/properties/size` |"
    ), "{out}");
    let details = out
        .find("<details><summary>1 compatible change</summary>")
        .unwrap();
    let added = out.find("`operation-added`").unwrap();
    assert!(added > details, "info findings are folded away");
    assert!(
        out.contains("the operation was added \\| with a pipe and &lt;b&gt;html&lt;/b&gt; outside `a<b>` code |  | `/paths/~1v1~1images~1{id}/get` |"),
        "pipes escaped, HTML shown outside code spans, missing pointers empty: {out}"
    );
    // Every table row has the header's six cells: seven unescaped pipes.
    for row in out.lines().filter(|l| l.starts_with("| ")) {
        let pipes = row.matches('|').count() - row.matches("\\|").count();
        assert_eq!(pipes, 7, "{row}");
    }
}

#[test]
fn markdown_without_breaking_changes_or_any_changes() {
    let warning_only = Report {
        findings: sample().findings.into_iter().skip(1).collect(),
    };
    let out = render(&warning_only, Format::Markdown);
    assert!(
        out.contains("No breaking changes: 0 breaking, 1 warning, 1 info."),
        "{out}"
    );
    let none = render(&Report::default(), Format::Markdown);
    assert_eq!(
        none,
        "### API contract diff\n\nNo changes to the contract's operations.\n"
    );
}

#[test]
fn formats_parse_by_name() {
    assert_eq!("text".parse(), Ok(Format::Text));
    assert_eq!("json".parse(), Ok(Format::Json));
    assert_eq!("markdown".parse(), Ok(Format::Markdown));
    assert_eq!(
        "yaml".parse::<Format>(),
        Err("unknown format `yaml`: text, json or markdown".to_string())
    );
}

#[test]
fn every_rule_has_a_unique_kebab_case_id() {
    let mut ids: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
    assert!(
        ids.iter()
            .all(|id| id.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
    );
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "rule ids are unique");
    assert_eq!(
        rules::rule("operation-removed").map(|r| r.severity),
        Some(Severity::Breaking)
    );
    assert!(rules::rule("no-such-rule").is_none());
}
