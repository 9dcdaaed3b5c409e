//! Request bodies, read strictly: unknown fields, wrong types and values
//! outside the contract's ranges are a 400 naming the field, before any
//! work starts.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::backend::{ImageSpec, VideoSpec};
use crate::problem::Problem;

/// Longest prompt, in characters (as JSON Schema counts them).
pub const MAX_PROMPT: usize = 4000;
/// Largest request body read.
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_IMAGES: u32 = 4;
pub const MAX_VIDEO_SECONDS: u32 = 10;
const MAX_SEED: u64 = 2_147_483_647;
const MAX_URL: usize = 2048;

/// `POST /v1/images/generations`, as OpenAI's images API has it (the
/// fields this service uses; `model` and `user` are accepted and unused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageBody {
    prompt: String,
    #[serde(default, deserialize_with = "whole")]
    n: Option<u64>,
    size: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    seed: Option<u64>,
    response_format: Option<String>,
    #[allow(dead_code)]
    model: Option<String>,
    #[allow(dead_code)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoBody {
    prompt: String,
    #[serde(default, deserialize_with = "whole")]
    seconds: Option<u64>,
    size: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    seed: Option<u64>,
    webhook_url: Option<String>,
}

/// A video to make, and who to tell when it is done.
#[derive(Debug, Clone)]
pub struct VideoOrder {
    pub spec: VideoSpec,
    pub webhook_url: Option<String>,
}

/// A whole number, written as JSON Schema's `integer` allows: `2` or `2.0`.
fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..1e18).contains(f))
                .map(|f| f as u64)
        })
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole, non-negative number")))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::invalid(format!("the body: {e}")))
}

fn prompt(p: String) -> Result<String, Problem> {
    let chars = p.chars().count();
    if chars == 0 || chars > MAX_PROMPT {
        return Err(Problem::invalid(format!(
            "`prompt` has {chars} characters; 1 to {MAX_PROMPT} are allowed"
        )));
    }
    Ok(p)
}

fn side(size: Option<String>, allowed: &[u32], default: u32) -> Result<u32, Problem> {
    let Some(size) = size else { return Ok(default) };
    allowed
        .iter()
        .copied()
        .find(|s| size == format!("{s}x{s}"))
        .ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(|s| format!("{s}x{s}")).collect();
            Problem::invalid(format!("`size` {size:?} is not one of {}", list.join(", ")))
        })
}

fn seed(seed: Option<u64>) -> Result<u64, Problem> {
    match seed {
        Some(s) if s > MAX_SEED => Err(Problem::invalid(format!(
            "`seed` is {s}; 0 to {MAX_SEED} are allowed"
        ))),
        s => Ok(s.unwrap_or(0)),
    }
}

pub fn image(body: &[u8]) -> Result<ImageSpec, Problem> {
    let b: ImageBody = parse(body)?;
    let n = b.n.unwrap_or(1);
    if !(1..=u64::from(MAX_IMAGES)).contains(&n) {
        return Err(Problem::invalid(format!(
            "`n` is {n}; 1 to {MAX_IMAGES} are allowed"
        )));
    }
    if let Some(f) = b.response_format.as_deref().filter(|f| *f != "b64_json") {
        return Err(Problem::invalid(format!(
            "`response_format` {f:?} is not supported; pictures come as `b64_json`"
        )));
    }
    Ok(ImageSpec {
        prompt: prompt(b.prompt)?,
        n: n as u32,
        side: side(b.size, &[256, 512, 1024], 1024)?,
        seed: seed(b.seed)?,
    })
}

pub fn video(body: &[u8]) -> Result<VideoOrder, Problem> {
    let b: VideoBody = parse(body)?;
    let seconds = b.seconds.unwrap_or(4);
    if !(1..=u64::from(MAX_VIDEO_SECONDS)).contains(&seconds) {
        return Err(Problem::invalid(format!(
            "`seconds` is {seconds}; 1 to {MAX_VIDEO_SECONDS} are allowed"
        )));
    }
    if let Some(url) = &b.webhook_url {
        webhook_url(url)?;
    }
    Ok(VideoOrder {
        spec: VideoSpec {
            prompt: prompt(b.prompt)?,
            seconds: seconds as u32,
            side: side(b.size, &[128, 256], 256)?,
            seed: seed(b.seed)?,
        },
        webhook_url: b.webhook_url,
    })
}

/// An absolute http(s) URL with a host.
fn webhook_url(url: &str) -> Result<(), Problem> {
    let bad = |why: &str| Err(Problem::invalid(format!("`webhook_url` {why}")));
    if url.len() > MAX_URL {
        return bad(&format!("is longer than {MAX_URL} characters"));
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return bad("is not a URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return bad("must be an absolute http or https URL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(r: Result<impl std::fmt::Debug, Problem>) -> String {
        let p = r.unwrap_err();
        assert_eq!(p.status, 400);
        p.detail
    }

    #[test]
    fn images_take_openai_fields_with_defaults() {
        let s = image(br#"{"prompt":"a fox","model":"gpt-image-1","user":"u1"}"#).unwrap();
        assert_eq!((s.n, s.side, s.seed), (1, 1024, 0));
        let s = image(
            br#"{"prompt":"a fox","n":4,"size":"256x256","seed":9,"response_format":"b64_json"}"#,
        )
        .unwrap();
        assert_eq!((s.n, s.side, s.seed), (4, 256, 9));
        // JSON Schema's integers may be written with a zero fraction.
        let s = image(br#"{"prompt":"a fox","n":2.0,"seed":2147483647.0}"#).unwrap();
        assert_eq!((s.n, s.seed), (2, 2_147_483_647));
        assert!(refused(image(br#"{"prompt":"x","n":1.5}"#)).contains("1.5"));
        assert!(refused(image(br#"{"prompt":"x","n":null}"#)).contains("null"));
    }

    #[test]
    fn images_out_of_contract_are_refused_by_field() {
        assert!(refused(image(br#"{"prompt":""}"#)).contains("`prompt`"));
        assert!(refused(image(br#"{"prompt":"x","n":5}"#)).contains("`n`"));
        assert!(refused(image(br#"{"prompt":"x","size":"100x100"}"#)).contains("`size`"));
        assert!(refused(image(br#"{"prompt":"x","response_format":"url"}"#)).contains("b64_json"));
        assert!(refused(image(br#"{"prompt":"x","seed":4294967296}"#)).contains("`seed`"));
        assert!(refused(image(br#"{"prompt":"x","style":"vivid"}"#)).contains("style"));
        assert!(refused(image(br#"{"prompt":3}"#)).contains("the body"));
        assert!(refused(image(b"not json")).contains("the body"));
        let long = format!(r#"{{"prompt":"{}"}}"#, "é".repeat(MAX_PROMPT + 1));
        assert!(refused(image(long.as_bytes())).contains("4001 characters"));
    }

    #[test]
    fn videos_check_seconds_and_the_webhook_url() {
        let o = video(br#"{"prompt":"rain","webhook_url":"https://example.com/hook"}"#).unwrap();
        assert_eq!((o.spec.seconds, o.spec.side), (4, 256));
        assert!(refused(video(br#"{"prompt":"x","seconds":11}"#)).contains("`seconds`"));
        for url in ["ftp://x/y", "/relative", "not a url"] {
            let body = format!(r#"{{"prompt":"x","webhook_url":"{url}"}}"#);
            assert!(
                refused(video(body.as_bytes())).contains("`webhook_url`"),
                "{url}"
            );
        }
    }
}
