//! An operation's documented responses, compiled, and sampled responses
//! checked against them.

use jsonschema::Validator;
use serde_json::Value;

use crate::document::{ContractError, Document, Operation, escape};
use crate::schema::{self, describe};
use crate::validate::{MAX_VIOLATIONS, Place, Violation, is_json, media_matches};

/// One documented response: a status (exact, a class like `4XX`, or
/// `default`), its media types and JSON schema.
#[derive(Debug)]
pub(crate) struct ResponseCheck {
    status: StatusSpec,
    media_types: Vec<String>,
    json: Option<Validator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StatusSpec {
    Exact(u16),
    Class(u16),
    Default,
}

impl StatusSpec {
    fn parse(s: &str) -> Option<StatusSpec> {
        if s == "default" {
            return Some(StatusSpec::Default);
        }
        let upper = s.to_ascii_uppercase();
        if let Some(class) = upper.strip_suffix("XX") {
            return class
                .parse()
                .ok()
                .filter(|c| (1..6).contains(c))
                .map(StatusSpec::Class);
        }
        s.parse()
            .ok()
            .filter(|c| (100..600).contains(c))
            .map(StatusSpec::Exact)
    }

    fn covers(self, status: u16) -> bool {
        match self {
            StatusSpec::Exact(s) => s == status,
            StatusSpec::Class(c) => status / 100 == c,
            StatusSpec::Default => true,
        }
    }
}

/// A response's violations: a status the operation does not document,
/// a media type it does not list, a JSON body its schema refuses.
/// `body` None: not captured (too large); only the head is checked.
pub(crate) fn check(
    responses: &[ResponseCheck],
    status: u16,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Vec<Violation> {
    let violation = |field: String, rule: &str, detail: String| Violation {
        place: Place::Response,
        field,
        rule: rule.to_string(),
        detail,
    };
    let Some(spec) = responses.iter().find(|r| r.status.covers(status)) else {
        return vec![violation(
            String::new(),
            "status",
            format!("status {status} is not documented"),
        )];
    };
    let empty = body.is_some_and(<[u8]>::is_empty);
    if spec.media_types.is_empty() || empty {
        return Vec::new();
    }
    let Some(sent) = content_type else {
        return vec![violation(
            String::new(),
            "content-type",
            "a content-type is required".into(),
        )];
    };
    let Some(listed) = spec.media_types.iter().find(|m| media_matches(m, sent)) else {
        return vec![violation(
            String::new(),
            "content-type",
            format!(
                "the content type is not one of {}",
                spec.media_types.join(", ")
            ),
        )];
    };
    let (Some(schema), Some(bytes), true) = (&spec.json, body, is_json(listed)) else {
        return Vec::new();
    };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return vec![violation(String::new(), "json", "not valid JSON".into())],
    };
    schema
        .iter_errors(&value)
        .take(MAX_VIOLATIONS)
        .map(|e| {
            violation(
                e.instance_path().as_str().to_string(),
                e.kind().keyword(),
                describe(e.kind()),
            )
        })
        .collect()
}

pub(crate) fn compile(
    doc: &Document,
    op: &Operation<'_>,
) -> Result<Vec<ResponseCheck>, ContractError> {
    let Some(responses) = op.node.get("responses").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (code, response) in responses {
        let Some(status) = StatusSpec::parse(code) else {
            continue;
        };
        let at = format!("{}/responses/{}", op.pointer, escape(code));
        let response = doc.resolve(response, &at)?;
        let mut media_types = Vec::new();
        let mut json = None;
        for (media, entry) in response
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let media = media.to_ascii_lowercase();
            if json.is_none()
                && is_json(&media)
                && let Some(schema) = entry.get("schema")
            {
                let pointer = format!("{at}/content/{}/schema", escape(&media));
                json = Some(schema::compile(doc, schema, &pointer)?);
            }
            media_types.push(media);
        }
        out.push(ResponseCheck {
            status,
            media_types,
            json,
        });
    }
    out.sort_by_key(|r| r.status);
    Ok(out)
}
