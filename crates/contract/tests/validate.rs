#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! Requests matched to operations and checked against them.

use std::path::Path;

use blastdoor_contract::{Contract, Document, Lookup, Place, RequestView, Violation};

const IMAGES_31: &str = r##"
openapi: 3.1.0
info: { title: images, version: "1.4.0" }
servers: [{ url: "https://images.internal/api" }]
paths:
  /v1/images/generations:
    post:
      operationId: createImage
      parameters:
        - { name: x-trace, in: header, required: true, schema: { type: string, maxLength: 16 } }
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/ImageRequest" }
      responses: { "200": { description: ok } }
  /v1/images/{id}:
    get:
      operationId: getImage
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
        - { name: size, in: query, schema: { type: string, enum: [small, large] } }
        - { name: tags, in: query, schema: { type: array, items: { type: integer }, maxItems: 2 } }
      responses: { "200": { description: ok } }
    delete:
      responses: { "204": { description: gone } }
components:
  schemas:
    ImageRequest:
      type: object
      additionalProperties: false
      required: [prompt]
      properties:
        prompt: { type: string, maxLength: 20 }
        n: { type: [integer, "null"], minimum: 1, maximum: 4 }
        response_format: { enum: [url, b64_json] }
"##;

fn contract(text: &str) -> Contract {
    Contract::compile(&Document::parse(Path::new("images.yaml"), text.as_bytes()).unwrap()).unwrap()
}

struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    content_type: Option<&'a str>,
    body: Option<&'a str>,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Req {
            method: "GET",
            path: "/",
            query: None,
            headers: vec![],
            content_type: Some("application/json"),
            body: None,
        }
    }
}

/// The operation's id and the violations, as strings.
fn check(c: &Contract, r: &Req<'_>) -> (String, Vec<String>) {
    let Lookup::Operation(op, params) = c.lookup(r.method, r.path) else {
        panic!("{} {} is not an operation", r.method, r.path);
    };
    let headers = r.headers.clone();
    let header = move |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let view = RequestView {
        path_params: &params,
        query: r.query,
        header: &header,
        content_type: r.content_type,
        body: r.body.map(str::as_bytes),
    };
    let v: Vec<Violation> = op.check(&view);
    (op.id.clone(), v.iter().map(ToString::to_string).collect())
}

#[test]
fn a_conforming_request_has_no_violations() {
    let c = contract(IMAGES_31);
    assert_eq!(c.version.as_deref(), Some("1.4.0"));
    let (id, v) = check(
        &c,
        &Req {
            method: "POST",
            path: "/v1/images/generations",
            headers: vec![("X-Trace", "abc")],
            body: Some(r#"{"prompt": "a cat", "n": null, "response_format": "url"}"#),
            ..Req::default()
        },
    );
    assert_eq!(id, "createImage");
    assert!(v.is_empty(), "{v:?}");
    let (id, v) = check(
        &c,
        &Req {
            path: "/v1/images/7",
            query: Some("size=large&tags=1&tags=2"),
            ..Req::default()
        },
    );
    assert_eq!(id, "getImage");
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn body_violations_name_the_field_and_rule_not_the_value() {
    let c = contract(IMAGES_31);
    let secret = "sk-live-0123456789abcdef";
    let (_, v) = check(
        &c,
        &Req {
            method: "POST",
            path: "/v1/images/generations",
            headers: vec![("x-trace", "abc")],
            body: Some(&format!(r#"{{"prompt": "{secret}", "n": 9, "extra": 1}}"#)),
            ..Req::default()
        },
    );
    assert!(
        v.contains(&"body field /prompt breaks `maxLength`: at most 20 characters".to_string()),
        "{v:?}"
    );
    assert!(
        v.contains(&"body field /n breaks `maximum`: at most 4".to_string()),
        "{v:?}"
    );
    assert!(
        v.contains(&"body breaks `additionalProperties`: unexpected properties: extra".to_string()),
        "{v:?}"
    );
    assert!(v.iter().all(|m| !m.contains(secret)), "{v:?}");
    let (_, v) = check(
        &c,
        &Req {
            method: "POST",
            path: "/v1/images/generations",
            headers: vec![("x-trace", "abc")],
            body: Some(r#"{"n": 1}"#),
            ..Req::default()
        },
    );
    assert_eq!(
        v,
        ["body breaks `required`: the property \"prompt\" is required"]
    );
}

#[test]
fn bodies_must_be_present_json_and_of_a_listed_type() {
    let c = contract(IMAGES_31);
    let post = |body: Option<&'static str>, content_type: Option<&'static str>| Req {
        method: "POST",
        path: "/v1/images/generations",
        headers: vec![("x-trace", "abc")],
        body,
        content_type,
        ..Req::default()
    };
    let (_, v) = check(&c, &post(Some(""), None));
    assert_eq!(v, ["body breaks `required`: a request body is required"]);
    let (_, v) = check(
        &c,
        &post(Some("{"), Some("application/json; charset=utf-8")),
    );
    assert_eq!(v.len(), 1);
    assert!(
        v[0].starts_with("body breaks `json`: not valid JSON"),
        "{v:?}"
    );
    let (_, v) = check(
        &c,
        &post(Some("prompt=x"), Some("application/x-www-form-urlencoded")),
    );
    assert_eq!(
        v,
        ["body breaks `content-type`: the content type is not one of application/json"]
    );
    let (_, v) = check(&c, &post(None, None));
    assert!(
        v.is_empty(),
        "an unread (streamed) body is not checked: {v:?}"
    );
}

#[test]
fn parameters_are_coerced_then_checked() {
    let c = contract(IMAGES_31);
    let get = |path: &'static str, query: Option<&'static str>| Req {
        path,
        query,
        ..Req::default()
    };
    let (_, v) = check(&c, &get("/v1/images/0", None));
    assert_eq!(v, ["path parameter `id` breaks `minimum`: at least 1"]);
    let (_, v) = check(&c, &get("/v1/images/abc", None));
    assert_eq!(v, ["path parameter `id` breaks `type`: must be an integer"]);
    let (_, v) = check(
        &c,
        &get("/v1/images/1", Some("size=huge&tags=1&tags=2&tags=3")),
    );
    assert_eq!(
        v[0],
        "query parameter `size` breaks `enum`: must be one of [\"small\",\"large\"]"
    );
    assert_eq!(
        v[1],
        "query parameter `tags` breaks `maxItems`: at most 2 items"
    );
    let (_, v) = check(&c, &get("/v1/images/1", Some("tags=x")));
    assert_eq!(
        v,
        ["query parameter `tags` breaks `type`: must be an integer"]
    );
    let (_, v) = check(
        &c,
        &Req {
            method: "POST",
            path: "/v1/images/generations",
            body: Some(r#"{"prompt": "x"}"#),
            ..Req::default()
        },
    );
    assert_eq!(
        v,
        ["header `x-trace` breaks `required`: it is required and missing"]
    );
}

/// `explode: false` arrays are one comma-joined value, so an empty array is
/// sent as an empty value (`ids=`); found by schemathesis, which sends it.
#[test]
fn an_unexploded_empty_array_is_an_empty_value() {
    let c = contract(
        r##"
openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /v1/videos:
    get:
      parameters:
        - name: ids
          in: query
          explode: false
          schema: { type: array, maxItems: 3, items: { type: integer, maximum: 9 } }
        - name: tags
          in: query
          explode: false
          schema: { type: array, minItems: 1, items: { type: string } }
        - { name: x-ids, in: header, schema: { type: array, items: { type: integer } } }
      responses: { "200": { description: ok } }
"##,
    );
    let get = |query: &'static str, headers: Vec<(&'static str, &'static str)>| Req {
        path: "/v1/videos",
        query: Some(query),
        headers,
        ..Req::default()
    };
    for (query, headers) in [
        ("ids=", vec![]),
        ("ids=1,2,3", vec![]),
        ("tags=a", vec![("x-ids", "")]),
        ("tags=a,", vec![("x-ids", "4,5")]),
    ] {
        let (_, v) = check(&c, &get(query, headers.clone()));
        assert!(v.is_empty(), "{query} {headers:?}: {v:?}");
    }
    let (_, v) = check(&c, &get("ids=1,x&tags=", vec![("x-ids", "1,")]));
    assert_eq!(
        v,
        [
            "query parameter `ids` breaks `type`: must be an integer",
            "query parameter `tags` breaks `minItems`: at least 1 items",
            "header `x-ids` breaks `type`: must be an integer",
        ]
    );
    let (_, v) = check(&c, &get("ids=1,2,3,4", vec![]));
    assert_eq!(
        v,
        ["query parameter `ids` breaks `maxItems`: at most 3 items"]
    );
}

#[test]
fn lookups_tell_operations_from_undocumented_traffic() {
    let c = contract(IMAGES_31);
    assert!(
        matches!(c.lookup("DELETE", "/v1/images/3"), Lookup::Operation(op, _) if op.id == "DELETE /v1/images/{id}")
    );
    assert!(matches!(
        c.lookup("PUT", "/v1/images/3"),
        Lookup::UndocumentedMethod
    ));
    assert!(matches!(
        c.lookup("GET", "/v2/images"),
        Lookup::UndocumentedPath
    ));
    // The servers URL's path is a base the service may be called under.
    assert!(
        matches!(c.lookup("GET", "/api/v1/images/3"), Lookup::Operation(op, _) if op.id == "getImage")
    );
    assert!(
        matches!(c.lookup("GET", "/v1/images/3/"), Lookup::Operation(op, _) if op.id == "getImage")
    );
}

#[test]
fn openapi_30_nullable_and_boolean_exclusive_bounds() {
    let doc = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
paths:
  /items:
    post:
      operationId: addItem
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                note: { type: string, nullable: true }
                price: { type: number, minimum: 0, exclusiveMinimum: true }
      responses: { "201": { description: created } }
"##;
    let c = contract(doc);
    let post = |body: &'static str| Req {
        method: "POST",
        path: "/items",
        body: Some(body),
        ..Req::default()
    };
    assert!(
        check(&c, &post(r#"{"note": null, "price": 1}"#))
            .1
            .is_empty()
    );
    let (_, v) = check(&c, &post(r#"{"price": 0}"#));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("body field /price breaks `"), "{v:?}");
}

#[test]
fn violations_are_typed() {
    let c = contract(IMAGES_31);
    let Lookup::Operation(op, params) = c.lookup("GET", "/v1/images/0") else {
        panic!()
    };
    let none = |_: &str| None;
    let v = op.check(&RequestView {
        path_params: &params,
        query: None,
        header: &none,
        content_type: None,
        body: None,
    });
    assert_eq!(v[0].place, Place::Path);
    assert_eq!((v[0].field.as_str(), v[0].rule.as_str()), ("id", "minimum"));
}

#[test]
fn responses_are_checked_for_status_media_type_and_schema() {
    let doc = r##"
openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /jobs/{id}:
    get:
      operationId: getJob
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [id, status]
                properties:
                  id: { type: string }
                  status: { enum: [queued, done] }
        4XX:
          description: problem
          content:
            application/problem+json:
              schema: { type: object, required: [title] }
"##;
    let c = contract(doc);
    let Lookup::Operation(op, _) = c.lookup("GET", "/jobs/1") else {
        panic!()
    };
    let check = |status, ct: Option<&str>, body: &str| -> Vec<String> {
        op.check_response(status, ct, Some(body.as_bytes()))
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert!(
        check(
            200,
            Some("application/json"),
            r#"{"id": "1", "status": "done"}"#
        )
        .is_empty()
    );
    assert_eq!(
        check(
            200,
            Some("application/json"),
            r#"{"id": "1", "status": "lost"}"#
        ),
        ["response field /status breaks `enum`: must be one of [\"queued\",\"done\"]"]
    );
    assert_eq!(
        check(200, Some("text/html"), "<p>"),
        ["response breaks `content-type`: the content type is not one of application/json"]
    );
    assert!(
        check(
            404,
            Some("application/problem+json"),
            r#"{"title": "nope"}"#
        )
        .is_empty(),
        "4XX covers 404"
    );
    assert_eq!(
        check(500, Some("application/json"), "{}"),
        ["response breaks `status`: status 500 is not documented"]
    );
    assert!(
        op.check_response(200, Some("application/json"), None)
            .is_empty(),
        "an uncaptured body is not judged"
    );
}

#[test]
fn deprecated_operations_carry_their_dates() {
    let doc = "openapi: 3.1.0\ninfo: { title: t, version: '1' }\npaths:\n  /a:\n    get:\n      deprecated: true\n      x-deprecated-at: '2026-11-01'\n      x-sunset: '2027-03-31'\n      responses: { '200': { description: ok } }\n";
    let c = contract(doc);
    let op = &c.operations[0];
    assert!(op.deprecated);
    assert_eq!(
        (op.deprecated_at, op.sunset),
        (Some(1_793_491_200), Some(1_806_451_200))
    );
    let bad = doc.replace("2027-03-31", "2027-02-30");
    let err = Contract::compile(&Document::parse(Path::new("a.yaml"), bad.as_bytes()).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "a.yaml: at /paths/~1a/get/x-sunset: x-sunset must be a date like \"2027-03-31\""
    );
}

#[test]
fn unexpected_property_names_are_few_short_and_escaped() {
    let c = contract(IMAGES_31);
    let mut body = serde_json::json!({"prompt": "x"});
    for i in 0..8 {
        body[format!("extra{i}\u{7}{}", "y".repeat(100))] = serde_json::json!(1);
    }
    let (_, v) = check(
        &c,
        &Req {
            method: "POST",
            path: "/v1/images/generations",
            headers: vec![("x-trace", "abc")],
            body: Some(&body.to_string()),
            ..Req::default()
        },
    );
    let detail = &v[0];
    assert!(detail.ends_with(", and 3 more"), "{detail}");
    assert!(detail.contains("extra0\\u{7}yyy"), "{detail}");
    assert!(detail.len() < 600, "{detail}");
}
