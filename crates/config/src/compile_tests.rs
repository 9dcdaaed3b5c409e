use std::path::Path;

use crate::{AccessLog, UpstreamProtocol, load_str};

fn env(name: &str) -> Option<String> {
    match name {
        "ADMIN_TOKEN" => Some("0123456789abcdef-token".into()),
        "UP" => Some("127.0.0.1:7001".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<crate::Config, crate::Diagnostics> {
    load_str(Path::new("/etc/bd/blastdoor.toml"), text, &env)
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"
admin_token = "${ADMIN_TOKEN}"
workers = 2

[store]
url = "sqlite://blastdoor.db"

[log]
access = "off"

[[service]]
name = "imagegen"
owner = "media-team"
route = { prefix = "/imagegen/" }
upstreams = ["http://${UP}", "http://127.0.0.1:7002/api/"]
timeout = "120s"
public = true

[[service]]
name = "chat"
route = { prefix = "/chat", host = "API.example.com" }
upstreams = ["https://llm.internal"]
upstream_protocol = "h2"
max_request_body = "1MiB"
retries = { attempts = 3, budget_ratio = 0.1 }
outlier = { consecutive_failures = 3, base_ejection_time = "10s" }
health_check = { path = "/healthz", interval = "1s" }
"#;

#[test]
fn compiles_a_full_config() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.server.workers, 2);
    assert_eq!(
        c.server.admin_token.as_ref().unwrap().expose(),
        "0123456789abcdef-token"
    );
    assert_eq!(c.log.access, AccessLog::Off);
    let img = &c.services[0];
    assert_eq!(img.route.prefix, "/imagegen");
    assert!(img.public);
    assert_eq!(img.timeout.as_secs(), 120);
    assert_eq!(img.upstreams[0].authority.as_str(), "127.0.0.1:7001");
    assert_eq!(img.upstreams[1].base_path, "/api");
    let chat = &c.services[1];
    assert!(!chat.public, "services require a key unless marked public");
    assert_eq!(chat.route.host.as_deref(), Some("api.example.com"));
    assert_eq!(chat.upstream_protocol, UpstreamProtocol::H2);
    assert_eq!(chat.max_request_body, 1 << 20);
    assert_eq!(chat.retries.attempts, 3);
    assert_eq!(chat.outlier.consecutive_failures, 3);
    assert_eq!(chat.health_check.as_ref().unwrap().interval.as_secs(), 1);
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = load(GOOD).unwrap();
    let debug = format!("{:?}", c);
    assert!(!debug.contains("0123456789abcdef-token"), "{debug}");
    assert!(debug.contains("redacted"));
}

#[test]
fn reports_every_problem_with_its_line() {
    let text = r#"[server]
listen = "not-an-address"
workers = 0

[[service]]
name = "a"
route = { prefix = "/a" }
upstreams = ["ftp://x"]
timeout = "30 parsecs"

[[service]]
name = "b"
route = { prefix = "/b" }
upstreams = ["http://127.0.0.1:1"]
timout = "1s"

[[service]]
name = "a"
route = { prefix = "a" }
upstreams = ["http://${MISSING}"]
"#;
    let diags = load(text).unwrap_err();
    let lines: Vec<(usize, String)> = diags.iter().map(|d| (d.line, d.message.clone())).collect();
    let has =
        |line: usize, needle: &str| lines.iter().any(|(l, m)| *l == line && m.contains(needle));
    // Shape errors are per section: service "b"'s typo does not hide the others.
    assert!(has(15, "unknown field `timout`"), "{lines:#?}");
    assert!(has(2, "not an address"), "{lines:#?}");
    assert!(has(3, "workers must be between"), "{lines:#?}");
    assert!(has(8, "scheme must be http or https"), "{lines:#?}");
    assert!(has(9, "unknown duration unit"), "{lines:#?}");
    assert!(has(18, "duplicate service name"), "{lines:#?}");
    assert!(has(19, "must be a plain absolute path"), "{lines:#?}");
    assert!(has(20, "MISSING is not set"), "{lines:#?}");
    let shown = diags.to_string();
    assert!(shown.contains("/etc/bd/blastdoor.toml:15:"), "{shown}");
}

#[test]
fn syntax_errors_and_unknown_sections_are_located() {
    let diags = load("[server\nlisten = 1\n").unwrap_err();
    assert_eq!(diags.0[0].line, 1, "{diags}");

    let diags = load("[servers]\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(
        diags.0[0].message.contains("unknown section `servers`"),
        "{diags}"
    );
    assert_eq!(diags.0[0].line, 1);
}

#[test]
fn rejects_bad_upstream_urls() {
    for (url, needle) in [
        ("127.0.0.1:80", "scheme"),
        ("http://user:pw@host", "credentials"),
        ("http://host/?q=1", "query"),
        ("http://", "not a valid URL"),
    ] {
        let text = format!(
            "[[service]]\nname = \"s\"\nroute = {{ prefix = \"/s\" }}\nupstreams = [\"{url}\"]\n"
        );
        let diags = load(&text).unwrap_err();
        assert!(diags.to_string().contains(needle), "{url}: {diags}");
    }
}

#[test]
fn duplicate_routes_are_rejected_but_different_hosts_are_fine() {
    let text = r#"
[[service]]
name = "a"
route = { prefix = "/x" }
upstreams = ["http://127.0.0.1:1"]
[[service]]
name = "b"
route = { prefix = "/x/" }
upstreams = ["http://127.0.0.1:1"]
"#;
    assert!(load(text).unwrap_err().to_string().contains("already used"));
    let ok = text.replace(
        "prefix = \"/x/\" }",
        "prefix = \"/x\", host = \"b.example\" }",
    );
    load(&ok).unwrap();
}

#[test]
fn sqlite_paths_are_relative_to_the_config_file() {
    let c = load("[store]\nurl = \"sqlite://data/bd.db\"\n").unwrap();
    assert_eq!(c.store.url, "sqlite:///etc/bd/data/bd.db");
    let c = load("").unwrap();
    assert_eq!(
        c.store.url, "sqlite:///etc/bd/blastdoor.db",
        "the default store sits beside the config"
    );
    let c = load("[store]\nurl = \"sqlite:///var/lib/bd.db\"\n").unwrap();
    assert_eq!(c.store.url, "sqlite:///var/lib/bd.db");
    let c = load("[store]\nurl = \"postgres://u@db/bd\"\n").unwrap();
    assert_eq!(c.store.url, "postgres://u@db/bd");
    assert!(load("[store]\nurl = \"mysql://x\"\n").is_err());
}

#[test]
fn upstream_auth_is_a_secret() {
    let text = "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"http://127.0.0.1:1\"]\nstrip_headers = [\"X-Internal\"]\n[service.upstream_auth]\nheader = \"Authorization\"\nvalue = \"Bearer ${ADMIN_TOKEN}\"\n";
    let c = load(text).unwrap();
    let auth = c.services[0].upstream_auth.as_ref().unwrap();
    assert_eq!(auth.header, "authorization");
    assert_eq!(auth.value.expose(), "Bearer 0123456789abcdef-token");
    assert_eq!(c.services[0].strip_headers, vec!["x-internal"]);
    assert!(!format!("{c:?}").contains("0123456789abcdef-token"));
    let bad = text.replace("Bearer ${ADMIN_TOKEN}", "line\\nbreak");
    let err = load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("upstream_auth.value is not a valid header value"),
        "{err}"
    );
}

#[test]
fn jwt_issuers() {
    let text = r#"
[[auth.jwt]]
issuer = "https://sso.example.com"
audience = "blastdoor"
jwks_file = "keys/jwks.json"
team_claim = "groups"
algorithms = ["ES256"]

[[auth.jwt]]
issuer = "https://other.example.com"
audience = "gw"
jwks_url = "https://other.example.com/.well-known/jwks.json"
"#;
    let c = load(text).unwrap();
    assert_eq!(c.auth.jwt.len(), 2);
    let first = &c.auth.jwt[0];
    assert_eq!(
        first.jwks,
        crate::JwksSource::File("/etc/bd/keys/jwks.json".into())
    );
    assert_eq!(first.consumer_claim, "sub");
    assert_eq!(first.team_claim.as_deref(), Some("groups"));
    assert_eq!(c.auth.jwt[1].algorithms, vec!["RS256", "ES256"]);

    let hmac = text.replace(r#"algorithms = ["ES256"]"#, r#"algorithms = ["HS256"]"#);
    assert!(
        load(&hmac)
            .unwrap_err()
            .to_string()
            .contains("is not accepted")
    );
    let both = text.replace(
        r#"jwks_file = "keys/jwks.json""#,
        "jwks_file = \"a\"\njwks_url = \"https://x\"",
    );
    assert!(
        load(&both)
            .unwrap_err()
            .to_string()
            .contains("exactly one of jwks_file and jwks_url")
    );
}

#[test]
fn store_passwords_never_show_in_debug() {
    let c = load("[store]\nurl = \"postgres://bd:hunter2@db:5432/bd\"\nredis = \"redis://:pw9@cache:6379\"\n").unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("pw9"),
        "{debug}"
    );
    assert!(debug.contains("postgres://bd:***@db:5432/bd"), "{debug}");
}

#[test]
fn redacts_url_passwords() {
    use crate::redact_url;
    assert_eq!(
        redact_url("postgres://bd:s3cret@db:5432/bd"),
        "postgres://bd:***@db:5432/bd"
    );
    assert_eq!(redact_url("postgres://bd@db/bd"), "postgres://bd@db/bd");
    assert_eq!(
        redact_url("sqlite:///var/lib/bd.db"),
        "sqlite:///var/lib/bd.db"
    );
    assert_eq!(redact_url("redis://:p@ss@cache"), "redis://:***@cache");
}

#[test]
fn meters_and_prices() {
    let text = r#"
[[service]]
name = "imagegen"
route = { prefix = "/img" }
upstreams = ["http://127.0.0.1:1"]
meter = "json"
unpriced = "reject"
[service.price]
per_request = "0.0005"
units = [{ name = "image", price = "0.04", from = "/data/#len" }]

[[service]]
name = "chat"
route = { prefix = "/chat" }
upstreams = ["http://127.0.0.1:1"]
meter = "openai"
[service.price.models."gpt-4o-mini"]
input_tokens = "0.15/1M"
output_tokens = "0.60/1M"
"#;
    let c = load(text).unwrap();
    let img = &c.services[0];
    assert_eq!(
        img.meter,
        crate::MeterSpec::Json(blastdoor_meter::JsonUnits::new(vec![
            crate::JsonPointerUnit {
                unit: "image".into(),
                pointer: "/data/#len".into()
            }
        ]))
    );
    assert_eq!(img.unpriced, crate::Unpriced::Reject);
    assert_eq!(img.pricing.per_request.micros(), 500);
    assert_eq!(c.services[1].meter, crate::MeterSpec::OpenAi);
    assert_eq!(c.services[1].unpriced, crate::Unpriced::Default);
    assert!(c.services[1].pricing.models.contains_key("gpt-4o-mini"));

    for (from, to, needle) in [
        (
            "price = \"0.04\"",
            "price = \"four cents\"",
            "not a decimal amount",
        ),
        (
            "from = \"/data/#len\"",
            "from = \"data\"",
            "needs from = \"/json/pointer\"",
        ),
        (
            "meter = \"json\"",
            "meter = \"magic\"",
            "must be one of openai",
        ),
        (
            "unpriced = \"reject\"",
            "unpriced = \"maybe\"",
            "must be \"reject\" or \"allow\"",
        ),
        (
            "per_request = \"0.0005\"",
            "per_request = \"0.0000001\"",
            "more than 6 decimal places",
        ),
        (
            "input_tokens = \"0.15/1M\"",
            "input_tokens = \"0.15/1X\"",
            "after '/'",
        ),
    ] {
        let bad = text.replacen(from, to, 1);
        let err = load(&bad).unwrap_err().to_string();
        assert!(err.contains(needle), "{to}: {err}");
    }
}

#[test]
fn rate_limits() {
    let text = "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"http://127.0.0.1:1\"]\nrate_limit = { requests_per_minute = 600, per_key_requests_per_minute = 60 }\n";
    let c = load(text).unwrap();
    assert_eq!(c.services[0].rate_limit.requests_per_minute, Some(600));
    assert_eq!(
        c.services[0].rate_limit.per_key_requests_per_minute,
        Some(60)
    );
    let bad = text.replace("= 600", "= 0");
    assert!(
        load(&bad)
            .unwrap_err()
            .to_string()
            .contains("requests_per_minute must be between")
    );
}

#[test]
fn units_per_minute_limits_name_metered_units() {
    let text = "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"http://127.0.0.1:1\"]\nmeter = \"openai\"\n[service.rate_limit]\nunits_per_minute = { output_tokens = 100000 }\nper_key_units_per_minute = { input_tokens = 5000, output_tokens = 2000 }\n";
    let c = load(text).unwrap();
    let limits = &c.services[0].rate_limit;
    assert_eq!(
        limits.units_per_minute,
        vec![("output_tokens".to_string(), 100_000)]
    );
    assert_eq!(
        limits.per_key_units_per_minute,
        vec![
            ("input_tokens".to_string(), 5000),
            ("output_tokens".to_string(), 2000)
        ]
    );
    let err = load(&text.replace("output_tokens = 100000", "image = 10"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "unit \"image\" is never metered here (the service's meter reports input_tokens"
        ),
        "{err}"
    );
    let err = load(&text.replace("= 100000", "= 0"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("units_per_minute must be between 1 and"),
        "{err}"
    );
}

#[test]
fn contracts_load_relative_to_the_config_and_report_their_problems() {
    let dir = std::env::temp_dir().join(format!("bd-contract-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("contracts")).unwrap();
    let good = "openapi: 3.1.0\ninfo: { title: t, version: '2' }\npaths:\n  /x:\n    get:\n      operationId: getX\n      responses: { '200': { description: ok } }\n";
    std::fs::write(dir.join("contracts/good.yaml"), good).unwrap();
    let bad = good.replace(
        "responses:",
        "parameters: [{ $ref: '#/nope' }]\n      responses:",
    );
    std::fs::write(dir.join("contracts/bad.yaml"), bad).unwrap();
    let config = dir.join("bd.toml");
    let text = "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"http://127.0.0.1:1\"]\ncontract = \"contracts/good.yaml\"\nvalidate = \"report\"\n";
    let c = load_str(&config, text, &env).unwrap();
    let spec = c.services[0].contract.as_ref().unwrap();
    assert_eq!(spec.validate, crate::Validate::Report);
    assert_eq!(spec.undocumented, crate::Undocumented::Report);
    assert_eq!(spec.contract.operations[0].id, "getX");
    assert_eq!(spec.contract.version.as_deref(), Some("2"));

    let err = load_str(&config, &text.replace("good.yaml", "bad.yaml"), &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bd.toml:5:"), "the config line: {err}");
    assert!(
        err.contains("bad.yaml: at /paths/~1x/get/parameters/0: $ref \"#/nope\" names nothing"),
        "the contract's file and pointer: {err}"
    );
    let err = load_str(&config, &text.replace("\"report\"", "\"strict\""), &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("validate \"strict\" must be one of \"enforce\", \"report\", \"off\""),
        "{err}"
    );
    let err = load_str(
        &config,
        &text.replace("contract = \"contracts/good.yaml\"\n", ""),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("validate needs a contract"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lifecycle_and_deprecation() {
    let base = "[[service]]\nname = \"s\"\nroute = { prefix = \"/s\" }\nupstreams = [\"http://127.0.0.1:1\"]\n";
    let c = load(&format!(
        "{base}deprecation = {{ since = \"2026-11-01\", sunset = \"2027-03-31\" }}\n"
    ))
    .unwrap();
    let s = &c.services[0];
    assert_eq!(
        s.lifecycle,
        crate::Lifecycle::Deprecated,
        "a deprecation makes it deprecated"
    );
    let d = s.deprecation.as_ref().unwrap();
    assert_eq!(d.deprecation_header(), "@1793491200");
    assert_eq!(
        d.sunset_header().as_deref(),
        Some("Wed, 31 Mar 2027 00:00:00 GMT")
    );
    assert_eq!(
        load(base).unwrap().services[0].lifecycle,
        crate::Lifecycle::Production
    );
    let err = |extra: &str| load(&format!("{base}{extra}\n")).unwrap_err().to_string();
    assert!(err("lifecycle = \"deprecated\"").contains("a deprecated service needs a deprecation"));
    assert!(err("lifecycle = \"retired\"").contains("lifecycle \"retired\" must be one of"));
    assert!(
        err("deprecation = { since = \"2026-13-01\" }")
            .contains("deprecation.since must be a date like")
    );
    assert!(
        err("deprecation = { since = \"2026-11-01\", sunset = \"2026-10-01\" }")
            .contains("sunset must not come before")
    );
}

#[test]
fn access_log_rotation() {
    let svc = "[[service]]\nname = \"a\"\nroute = { prefix = \"/a\" }\nupstreams = [\"http://127.0.0.1:1\"]\n";
    let c = load(&format!(
        "[log]\naccess = \"/var/log/bd/access.log\"\naccess_rotation = \"daily\"\naccess_max_files = 14\n{svc}"
    ))
    .unwrap();
    assert_eq!(
        c.log.access,
        AccessLog::File(crate::LogFile {
            path: "/var/log/bd/access.log".into(),
            rotation: crate::Rotation::Daily,
            max_files: Some(14),
        })
    );
    for (log, needle) in [
        (
            "access = \"stdout\"\naccess_rotation = \"daily\"",
            "access_rotation needs a file access log",
        ),
        (
            "access = \"a.log\"\naccess_rotation = \"weekly\"",
            "access_rotation must be never, minutely, hourly or daily",
        ),
        (
            "access = \"a.log\"\naccess_max_files = 3",
            "access_max_files needs access_rotation",
        ),
        (
            "access = \"a.log\"\naccess_rotation = \"hourly\"\naccess_max_files = 0",
            "access_max_files must be between 1",
        ),
    ] {
        let diags = load(&format!("[log]\n{log}\n{svc}")).unwrap_err();
        assert!(diags.to_string().contains(needle), "{log}: {diags}");
    }
}

#[test]
fn otlp_protocol_is_http_protobuf_or_grpc() {
    let with = |protocol: &str| {
        format!("{GOOD}\n[tracing]\notlp_endpoint = \"http://127.0.0.1:4317\"\n{protocol}\n")
    };
    let protocol = |text: &str| load(text).unwrap().tracing.unwrap().protocol;
    assert_eq!(protocol(&with("")), crate::OtlpProtocol::HttpProtobuf);
    assert_eq!(
        protocol(&with("otlp_protocol = \"http/protobuf\"")),
        crate::OtlpProtocol::HttpProtobuf
    );
    assert_eq!(
        protocol(&with("otlp_protocol = \"grpc\"")),
        crate::OtlpProtocol::Grpc
    );
    let diags = load(&with("otlp_protocol = \"http/json\"")).unwrap_err();
    assert!(
        diags
            .to_string()
            .contains("must be \"http/protobuf\" or \"grpc\""),
        "{diags}"
    );
}
