#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `contract lint`: every rule is triggered by a one-place edit of a clean
//! contract (tests/lint/good.yaml), and the edit yields exactly that finding.

#[path = "lint/support.rs"]
mod support;

use blastdoor_contract::lint::{self, Finding, Format, RULES};
use serde_json::{Value, json};
use support::*;

#[test]
fn the_good_document_is_clean() {
    let findings = lint_with(&good(), &[]);
    assert_eq!(findings, vec![]);
    assert!(!lint::has_errors(&findings));
    assert_eq!(
        lint::render(&findings, Format::Text),
        "0 errors, 0 warnings\n"
    );
}

#[test]
fn every_rule_has_a_unique_id_and_a_test_here() {
    let source = include_str!("lint.rs");
    for (i, rule) in RULES.iter().enumerate() {
        assert!(
            RULES[..i].iter().all(|r| r.id != rule.id),
            "{} twice",
            rule.id
        );
        assert_eq!(lint::rule(rule.id), Some(rule));
        assert!(
            rule.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            rule.id
        );
        let test = format!("fn {}()", rule.id.replace('-', "_"));
        assert!(source.contains(&test), "{} has no test {test}", rule.id);
    }
    assert_eq!(lint::rule("no-such-rule"), None);
}

#[test]
fn operation_id_present() {
    let pointer = format!("{CREATE}/operationId");
    assert_eq!(
        after(|v| remove(v, &pointer)),
        one("operation-id-present", CREATE)
    );
    assert_eq!(
        after(|v| set(v, &pointer, json!(""))),
        one("operation-id-present", CREATE)
    );
}

#[test]
fn operation_id_unique() {
    let findings = after(|v| set(v, &format!("{LIST}/operationId"), json!("createImage")));
    // Within a path, GET is listed before POST: the POST is the repeat.
    assert_eq!(
        findings,
        one("operation-id-unique", &format!("{CREATE}/operationId"))
    );
}

#[test]
fn operation_security_defined() {
    let rule = "operation-security-defined";
    // `security: []` alone does not make an operation public...
    assert_eq!(
        after(|v| set(v, &format!("{GET}/security"), json!([]))),
        one(rule, GET)
    );
    // ...nor does an optional requirement.
    let optional = json!([{}, {"bearer": []}]);
    assert_eq!(
        after(|v| set(v, &format!("{GET}/security"), optional.clone())),
        one(rule, GET)
    );
    // Without any requirement anywhere, every unmarked operation is open.
    assert_eq!(
        after(|v| remove(v, "/security")),
        found(&[(rule, CANCEL), (rule, LIST), (rule, CREATE), (rule, GET)])
    );
    // The mark without `security: []` under a global requirement contradicts
    // it; the operation then requires credentials, so a 401 is due as well.
    assert_eq!(
        after(|v| remove(v, &format!("{HEALTH}/security"))),
        found(&[
            (rule, &format!("{HEALTH}/x-blastdoor-public")),
            ("response-401-documented", &format!("{HEALTH}/responses")),
        ])
    );
    assert_eq!(
        after(|v| remove(v, &format!("{HEALTH}/x-blastdoor-public"))),
        one(rule, HEALTH)
    );
    // Passes: optional credentials with the mark (and then no 401 is due).
    assert_eq!(
        after(|v| {
            set(v, &format!("{GET}/security"), optional);
            set(v, &format!("{GET}/x-blastdoor-public"), json!(true));
            remove(v, &format!("{GET}/responses/401"));
        }),
        vec![]
    );
}

#[test]
fn security_scheme_defined() {
    let rule = "security-scheme-defined";
    let unknown = json!([{"bearer": []}, {"apiKey": []}]);
    assert_eq!(
        after(|v| set(v, &format!("{GET}/security"), unknown.clone())),
        one(rule, &format!("{GET}/security/1"))
    );
    assert_eq!(
        after(|v| set(v, "/security", unknown)),
        one(rule, "/security/1")
    );
}

#[test]
fn no_credentials_in_query() {
    let rule = "no-credentials-in-query";
    for name in ["api_key", "X-Api-Key", "access_token", "password", "key"] {
        let param =
            json!({"name": name, "in": "query", "schema": {"type": "string", "maxLength": 64}});
        assert_eq!(
            after(|v| push(v, &format!("{LIST}/parameters"), param)),
            one(rule, &format!("{LIST}/parameters/2")),
            "{name}"
        );
    }
    // In a header it is where it belongs.
    let header =
        json!({"name": "x-api-key", "in": "header", "schema": {"type": "string", "maxLength": 64}});
    assert_eq!(
        after(|v| push(v, &format!("{LIST}/parameters"), header)),
        vec![]
    );

    let scheme = "/components/securitySchemes/key";
    assert_eq!(
        after(|v| set(
            v,
            scheme,
            json!({"type": "apiKey", "in": "query", "name": "key"})
        )),
        one(rule, &format!("{scheme}/in"))
    );
    assert_eq!(
        after(|v| set(
            v,
            scheme,
            json!({"type": "apiKey", "in": "header", "name": "x-api-key"})
        )),
        vec![]
    );
}

#[test]
fn servers_https() {
    let rule = "servers-https";
    assert_eq!(
        after(|v| push(v, "/servers", json!({"url": "http://api.example.com"}))),
        one(rule, "/servers/3/url")
    );
    let templated =
        json!({"url": "{scheme}://api.example.com", "variables": {"scheme": {"default": "http"}}});
    assert_eq!(
        after(|v| push(v, "/servers", templated)),
        one(rule, "/servers/3/url")
    );
    assert_eq!(
        after(|v| set(
            v,
            &format!("{GET}/servers"),
            json!([{"url": "http://10.0.0.7"}])
        )),
        one(rule, &format!("{GET}/servers/0/url"))
    );
    let fine = json!([{"url": "https://eu.example.com"}, {"url": "http://localhost:8080"}, {"url": "/v1"}]);
    assert_eq!(after(|v| set(v, &format!("{GET}/servers"), fine)), vec![]);
}

#[test]
fn path_parameters_defined() {
    let rule = "path-parameters-defined";
    assert_eq!(
        after(|v| remove(v, &format!("{CANCEL}/parameters/0"))),
        one(rule, CANCEL)
    );
    assert_eq!(
        after(|v| set(v, &format!("{CANCEL}/parameters/0/required"), json!(false))),
        one(rule, &format!("{CANCEL}/parameters/0"))
    );
    let extra = json!({"name": "other", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 8}});
    assert_eq!(
        after(|v| push(v, &format!("{CANCEL}/parameters"), extra)),
        one(rule, &format!("{CANCEL}/parameters/1"))
    );
    // A shared component parameter is reported once, where it is defined.
    assert_eq!(
        after(|v| set(v, "/components/parameters/ImageId/name", json!("image"))),
        found(&[(rule, "/components/parameters/ImageId"), (rule, GET)])
    );
    let unbalanced = after(|v| {
        let paths = at(v, "/paths").as_object_mut().unwrap();
        let item = paths.remove("/v1/images/{id}").unwrap();
        paths.insert("/v1/images/{id".into(), item);
    });
    assert_eq!(unbalanced, one(rule, "/paths/~1v1~1images~1{id"));
}

#[test]
fn string_max_length() {
    let rule = "string-max-length";
    let prompt = format!("{REQUEST}/properties/prompt");
    assert_eq!(
        after(|v| remove(v, &format!("{prompt}/maxLength"))),
        one(rule, &prompt)
    );
    let page = format!("{LIST}/parameters/1/schema");
    assert_eq!(
        after(|v| remove(v, &format!("{page}/maxLength"))),
        one(rule, &page)
    );
    // 3.1 type lists count.
    assert_eq!(
        after(|v| set(v, &prompt, json!({"type": ["string", "null"]}))),
        one(rule, &prompt)
    );
    // readOnly input, binary uploads, enum/const and response strings pass
    // in the good document; a schema reached from a request is held to
    // bounds even when a response reaches it too.
    assert_eq!(
        after(|v| set(
            v,
            &format!("{REQUEST}/properties/source"),
            json!({"$ref": "#/components/schemas/Image"})
        )),
        found(&[
            (
                "integer-maximum",
                "/components/schemas/Entity/properties/created"
            ),
            (
                "string-max-length",
                "/components/schemas/Image/allOf/1/properties/url"
            ),
            (
                "integer-maximum",
                "/components/schemas/Image/allOf/1/properties/width"
            ),
        ])
    );
}

#[test]
fn array_max_items() {
    let tags = format!("{REQUEST}/properties/tags");
    assert_eq!(
        after(|v| remove(v, &format!("{tags}/maxItems"))),
        one("array-max-items", &tags)
    );
}

#[test]
fn integer_maximum() {
    let rule = "integer-maximum";
    let n = format!("{REQUEST}/properties/n");
    assert_eq!(after(|v| remove(v, &format!("{n}/maximum"))), one(rule, &n));
    let quality = format!("{REQUEST}/properties/quality");
    assert_eq!(
        after(|v| remove(v, &format!("{quality}/exclusiveMaximum"))),
        one(rule, &quality)
    );
    // A 3.0-style flag is no bound; a bound in an allOf member is.
    assert_eq!(
        after(|v| set(v, &format!("{quality}/exclusiveMaximum"), json!(true))),
        one(rule, &quality)
    );
    let seed = format!("{REQUEST}/properties/seed");
    assert_eq!(
        after(|v| remove(v, &format!("{seed}/allOf"))),
        one(rule, &seed)
    );
    let limit = format!("{LIST}/parameters/0/schema");
    assert_eq!(
        after(|v| remove(v, &format!("{limit}/maximum"))),
        one(rule, &limit)
    );
}

#[test]
fn object_closed() {
    let rule = "object-closed";
    assert_eq!(
        after(|v| remove(v, &format!("{REQUEST}/additionalProperties"))),
        one(rule, REQUEST)
    );
    // Response schemas are checked too.
    let list = "/components/schemas/ImageList";
    assert_eq!(
        after(|v| remove(v, &format!("{list}/additionalProperties"))),
        one(rule, list)
    );
    // unevaluatedProperties closes an object only in 3.1.
    assert_eq!(
        after(|v| set(v, "/openapi", json!("3.0.3"))),
        one(rule, "/components/schemas/Style/oneOf/1")
    );
    // Unreached component schemas are linted too (as output: no bounds).
    assert_eq!(
        after(|v| remove(v, "/components/schemas/Unused/additionalProperties")),
        one(rule, "/components/schemas/Unused")
    );
}

#[test]
fn response_401_documented() {
    let responses = format!("{GET}/responses");
    assert_eq!(
        after(|v| remove(v, &format!("{responses}/401"))),
        one("response-401-documented", &responses)
    );
}

#[test]
fn response_429_documented() {
    let responses = format!("{HEALTH}/responses");
    assert_eq!(
        after(|v| remove(v, &format!("{responses}/429"))),
        one("response-429-documented", &responses)
    );
}

#[test]
fn response_5xx_documented() {
    let responses = format!("{LIST}/responses");
    assert_eq!(
        after(|v| remove(v, &format!("{responses}/default"))),
        one("response-5xx-documented", &responses)
    );
}

#[test]
fn operation_success_response() {
    let responses = format!("{HEALTH}/responses");
    assert_eq!(
        after(|v| remove(v, &format!("{responses}/200"))),
        one("operation-success-response", &responses)
    );
}

#[test]
fn responses_missing_altogether_are_reported_at_the_operation() {
    assert_eq!(
        after(|v| remove(v, &format!("{GET}/responses"))),
        found(&[
            ("operation-success-response", GET),
            ("response-401-documented", GET),
            ("response-429-documented", GET),
            ("response-5xx-documented", GET),
        ])
    );
}

#[test]
fn error_problem_json() {
    let rule = "error-problem-json";
    let content = "/components/responses/Problem/content";
    // A shared response is reported once, where it is defined.
    assert_eq!(
        after(|v| {
            let problem = at(v, content).as_object_mut().unwrap();
            let media = problem.remove("application/problem+json").unwrap();
            problem.insert("application/json".into(), media);
        }),
        one(rule, content)
    );
    let inline =
        json!({"description": "x", "content": {"text/plain": {"schema": {"type": "string"}}}});
    assert_eq!(
        after(|v| set(v, &format!("{GET}/responses/404"), inline)),
        one(rule, &format!("{GET}/responses/404/content"))
    );
    let with_charset =
        json!({"description": "x", "content": {"application/problem+json; charset=utf-8": {}}});
    assert_eq!(
        after(|v| set(v, &format!("{GET}/responses/404"), with_charset)),
        vec![]
    );
}

#[test]
fn path_style_consistent() {
    let rule = "path-style-consistent";
    let add = |path: &'static str| {
        move |v: &mut Value| set(v, &format!("/paths/{}", path.replace('/', "~1")), json!({}))
    };
    assert_eq!(
        after(add("/v1/imageVariations")),
        one(rule, "/paths/~1v1~1imageVariations")
    );
    assert_eq!(
        after(add("/v1/image_variations-x")),
        one(rule, "/paths/~1v1~1image_variations-x")
    );
    assert_eq!(after(add("/v1/@me")), one(rule, "/paths/~1v1~1@me"));
    assert_eq!(
        after(add("/v1/videos/")),
        one(rule, "/paths/~1v1~1videos~1")
    );
    assert_eq!(
        after(add("/v1//videos")),
        one(rule, "/paths/~1v1~1~1videos")
    );
    // Neutral words, file names and more kebab-case fit.
    assert_eq!(after(add("/v1/openapi.json")), vec![]);
    assert_eq!(after(add("/v1/video-jobs/{id}/frames")), vec![]);
    // When snake_case is the majority, the kebab-case segment is the odd one.
    let findings = after(|v| {
        for path in ["/v1/video_jobs", "/v1/audio_jobs"] {
            set(v, &format!("/paths/{}", path.replace('/', "~1")), json!({}));
        }
    });
    assert_eq!(
        findings,
        one(rule, "/paths/~1v1~1image-variations~1{id}:cancel")
    );
}

#[test]
fn document_valid() {
    let rule = "document-valid";
    let style = format!("{REQUEST}/properties/style");
    assert_eq!(
        after(|v| set(v, &style, json!({"$ref": "#/components/schemas/Nope"}))),
        one(rule, &style)
    );
    assert_eq!(
        after(|v| set(v, &style, json!({"$ref": "other.yaml#/Style"}))),
        one(rule, &style)
    );
    let looped = after(|v| {
        set(
            v,
            "/components/schemas/A",
            json!({"$ref": "#/components/schemas/B"}),
        );
        set(
            v,
            "/components/schemas/B",
            json!({"$ref": "#/components/schemas/A"}),
        );
    });
    assert_eq!(
        looped,
        found(&[
            (rule, "/components/schemas/A"),
            (rule, "/components/schemas/B")
        ])
    );
    // Operations that cannot be listed are one finding, not a failure.
    assert_eq!(
        after(|v| set(v, "/paths/v1~1x", json!({"get": {}}))),
        one(rule, "/paths/v1~1x")
    );
    assert_eq!(
        after(|v| set(
            v,
            "/x-blastdoor-lint",
            json!({"disable": ["string-max-lenght"]})
        )),
        one(rule, "/x-blastdoor-lint/disable/0")
    );
    assert_eq!(
        after(|v| set(
            v,
            "/x-blastdoor-lint",
            json!({"disable": "string-max-length"})
        )),
        one(rule, "/x-blastdoor-lint/disable")
    );
}

#[test]
fn rules_can_be_switched_off_by_the_caller_or_the_document() {
    let mut v = good();
    remove(&mut v, &format!("{REQUEST}/properties/prompt/maxLength"));
    remove(&mut v, &format!("{GET}/operationId"));
    let ids = |findings: Vec<Finding>| findings.iter().map(|f| f.rule).collect::<Vec<_>>();
    assert_eq!(
        ids(lint_with(&v, &[])),
        ["operation-id-present", "string-max-length"]
    );
    assert_eq!(
        ids(lint_with(&v, &["string-max-length"])),
        ["operation-id-present"]
    );
    set(
        &mut v,
        "/x-blastdoor-lint",
        json!({"disable": ["operation-id-present"]}),
    );
    assert_eq!(ids(lint_with(&v, &[])), ["string-max-length"]);
    assert_eq!(
        ids(lint_with(&v, &["string-max-length"])),
        Vec::<&str>::new()
    );
}
