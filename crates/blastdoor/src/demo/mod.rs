//! `blastdoor demo`: the gateway with bundled reference services behind it,
//! on loopback, ready to call.

mod chat_sim;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::serve::{self, Bound};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Proxy address; if taken, a free port is used instead.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin address; if taken, a free port is used instead.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
}

pub fn run(args: DemoArgs) -> Result<()> {
    crate::logging::init("info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<()> {
    let chat = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the chat simulator")?;
    let chat_addr = chat.local_addr()?;
    let sim = tokio::spawn(async move { axum::serve(chat, chat_sim::router()).await });

    let listen = free_or_any(args.listen).await;
    let admin = free_or_any(args.admin_listen).await;
    // The dashboard's login: new each run, shown in the banner.
    let token =
        blastdoor_auth::key::random_base62(24).context("no random source for the admin token")?;
    let text = config_text(listen, admin, chat_addr, &token);
    let config = blastdoor_config::load_str(Path::new("demo.toml"), &text, &|name| {
        std::env::var(name).ok()
    })
    .map_err(|d| anyhow::anyhow!("the demo config is invalid (a bug):\n{d}"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let banner_token = token.clone();
    tokio::spawn(async move {
        if let Ok(bound) = rx.await {
            print_banner(bound, &banner_token);
        }
    });
    let result = serve::serve(config, None, Some(tx)).await;
    sim.abort();
    result
}

/// The requested address if it is free, else the same IP on any port.
async fn free_or_any(addr: SocketAddr) -> SocketAddr {
    match TcpListener::bind(addr).await {
        Ok(_) => addr,
        Err(_) => SocketAddr::new(addr.ip(), 0),
    }
}

fn config_text(listen: SocketAddr, admin: SocketAddr, chat: SocketAddr, token: &str) -> String {
    format!(
        r#"
[server]
listen = "{listen}"
admin_listen = "{admin}"
admin_token = "{token}"

[store]
url = "sqlite://.blastdoor-demo/blastdoor.db"
spool_dir = ".blastdoor-demo/spool"

[log]
access = "stdout"

[[service]]
name = "chat"
owner = "demo-team"
public = true
route = {{ prefix = "/chat" }}
upstreams = ["http://{chat}"]
timeout = "60s"
meter = "openai"
[service.price]
per_request = "0.0001"
[service.price.models."sim-small"]
input_tokens = "0.15/1M"
output_tokens = "0.60/1M"
"#
    )
}

fn print_banner(b: Bound, token: &str) {
    let p = b.proxy;
    let a = b.admin;
    println!(
        r#"
blastdoor demo is running.

  proxy      http://{p}
  dashboard  http://{a}/   (log in with the admin token {token})
  admin      http://{a}   (/healthz, /readyz, /metrics; /v1 with the token)

Behind the door: "chat", an OpenAI-shaped chat model simulator, at /chat. It is public
(no key needed) and metered: each call's tokens and cost show in the access log below.

Try:
  curl -s http://{p}/chat/v1/chat/completions -H 'content-type: application/json' \
    -d '{{"model":"sim-small","messages":[{{"role":"user","content":"hello door"}}]}}'

  curl -N http://{p}/chat/v1/chat/completions -H 'content-type: application/json' \
    -d '{{"model":"sim-small","stream":true,"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"stream please"}}]}}'

  curl -i http://{p}/nowhere                      # a gateway error, as problem+json
  curl -s http://{a}/metrics | grep -E 'blastdoor_(requests|cost_usd|units)_total'

Ctrl-C stops everything.
"#
    );
}
