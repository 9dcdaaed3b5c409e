//! `blastdoor demo`: the gateway on an embedded store in a local folder,
//! with the bundled reference services behind it (mediagen, and an
//! OpenAI-shaped chat model simulator), their contracts and prices, and a
//! demo key with a small hard budget; ready to call.
//!
//! The folder keeps the store, the resolved config and the demo key, so a
//! second run carries on where the first stopped (`--fresh` starts over).

mod chat_sim;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use blastdoor_auth::{CreateKey, KeyOps};
use blastdoor_budget::Period;
use blastdoor_budget::ops::{self, BudgetSpec, BudgetView};
use blastdoor_store::{BudgetScope, SqlStore};
use blastdoor_types::Money;
use tokio::net::TcpListener;

use crate::serve::{self, Bound};

/// The demo's config, with `${...}` for what each run decides.
const CONFIG: &str = include_str!("../../../../examples/demo.toml");
const CONTRACTS: [(&str, &str); 2] = [
    (
        "mediagen.yaml",
        include_str!("../../../../examples/contracts/mediagen.yaml"),
    ),
    (
        "chat.yaml",
        include_str!("../../../../examples/contracts/chat.yaml"),
    ),
];

/// The demo key's hard budget: a dozen pictures.
const BUDGET_USD: &str = "0.50";
const KEY_FILE: &str = "demo-key";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Proxy address; if taken, a free port is used instead.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin address; if taken, a free port is used instead.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// The folder for the store, the config and the demo key.
    #[arg(long, default_value = ".blastdoor-demo")]
    dir: PathBuf,
    /// Delete the folder first: a new store, key and budget.
    #[arg(long)]
    fresh: bool,
}

pub fn run(args: DemoArgs) -> Result<()> {
    crate::logging::init("info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args))
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn spawn_service(name: &str, router: axum::Router) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .with_context(|| format!("cannot start {name}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

async fn demo(args: DemoArgs) -> Result<()> {
    let dir = &args.dir;
    if args.fresh && dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete {}", dir.display()))?;
    }
    let contracts = dir.join("contracts");
    std::fs::create_dir_all(&contracts)
        .with_context(|| format!("cannot create {}", contracts.display()))?;
    for (name, text) in CONTRACTS {
        std::fs::write(contracts.join(name), text)?;
    }

    let mediagen = spawn_service(
        "mediagen",
        mediagen::router(
            mediagen::backend::Local::default(),
            mediagen::Config::default(),
        ),
    )
    .await?;
    let chat = spawn_service("the chat simulator", chat_sim::router()).await?;
    let listen = free_or_any(args.listen).await;
    let admin = free_or_any(args.admin_listen).await;
    // The dashboard's login: new each run, shown in the banner.
    let token =
        blastdoor_auth::key::random_base62(24).context("no random source for the admin token")?;
    let text = CONFIG
        .replace("${DEMO_LISTEN}", &listen.to_string())
        .replace("${DEMO_ADMIN_LISTEN}", &admin.to_string())
        .replace("${BLASTDOOR_ADMIN_TOKEN}", &token)
        .replace("${MEDIAGEN_URL}", &mediagen)
        .replace("${CHAT_URL}", &chat);
    let config_path = dir.join("blastdoor.toml");
    write_private(&config_path, &text)?;
    let config = blastdoor_config::load(&config_path)
        .map_err(|d| anyhow::anyhow!("the demo config is invalid (a bug):\n{d}"))?;

    let store = crate::store::open(&config).await?;
    let demo_key = demo_key(&store, dir).await;
    store.close().await;
    let (key, budget) = demo_key?;

    let (tx, rx) = tokio::sync::oneshot::channel();
    let banner = Banner {
        token,
        key,
        budget,
        config: config_path,
    };
    tokio::spawn(async move {
        if let Ok(bound) = rx.await {
            banner.print(bound);
        }
    });
    serve::serve(config, None, Some(tx)).await
}

/// Writes a file only its owner may read (it holds the admin token or a key).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The demo key and its budget: the one saved in the folder if the store
/// still knows it, else a new one with a new hard budget.
async fn demo_key(store: &SqlStore, dir: &Path) -> Result<(String, BudgetView)> {
    let ops_keys = KeyOps::new(store, None, "demo".to_string());
    let saved = std::fs::read_to_string(dir.join(KEY_FILE)).ok();
    let known = match saved.as_deref().map(str::trim) {
        Some(key) if key.len() > 15 => {
            let id = &key[3..15];
            let active = ops_keys
                .list()
                .await?
                .iter()
                .any(|k| k.id == id && k.revoked_at.is_none());
            active.then(|| (key.to_string(), id.to_string()))
        }
        _ => None,
    };
    let (key, id) = match known {
        Some(k) => k,
        None => {
            let (key, record) = ops_keys
                .create(CreateKey {
                    name: "demo-app".into(),
                    team: Some("demo".into()),
                    services: Vec::new(),
                    methods: Vec::new(),
                    expires_in: None,
                })
                .await?;
            let spec = BudgetSpec {
                scope: BudgetScope::Key,
                target: record.id.clone(),
                amount: Money::parse(BUDGET_USD).map_err(|e| anyhow::anyhow!("{e}"))?,
                period: Period::Total,
                hard: true,
                alerts: Vec::new(),
            };
            ops::set(store, None, "demo", spec).await?;
            let key = key.reveal();
            write_private(&dir.join(KEY_FILE), &key)?;
            (key, record.id)
        }
    };
    let budget = ops::list(store, None)
        .await?
        .into_iter()
        .find(|b| b.scope == BudgetScope::Key && b.target == id)
        .context("the demo key has no budget (was it deleted? run with --fresh)")?;
    Ok((key, budget))
}

/// The requested address if it is free, else the same IP on any port.
async fn free_or_any(addr: SocketAddr) -> SocketAddr {
    match TcpListener::bind(addr).await {
        Ok(_) => addr,
        Err(_) => SocketAddr::new(addr.ip(), 0),
    }
}

/// "0.2" as "0.20", "3" as "3.00": dollars as people write them.
fn cents(usd: &str) -> String {
    match usd.split_once('.') {
        None => format!("{usd}.00"),
        Some((_, frac)) if frac.len() == 1 => format!("{usd}0"),
        Some(_) => usd.to_string(),
    }
}

struct Banner {
    token: String,
    key: String,
    budget: BudgetView,
    config: PathBuf,
}

impl Banner {
    fn print(&self, b: Bound) {
        let (p, a) = (b.proxy, b.admin);
        let (token, key, config) = (&self.token, &self.key, self.config.display());
        let (amount, left) = (
            cents(&self.budget.amount_usd),
            cents(&self.budget.remaining_usd),
        );
        println!(
            r#"
blastdoor demo is running.

  proxy      http://{p}
  dashboard  http://{a}/   (log in with the admin token {token})
  admin      http://{a}   (/healthz, /readyz, /metrics; /v1 with the token)
  demo key   {key}
             hard budget ${amount} in total, ${left} left (--fresh starts over)

Behind the door, each with a contract and a price:
  /mediagen  pictures ($0.04 each) and videos ($0.05 a second): mediagen, a reference
             service (its local renderer stands in for an image model)
  /chat      an OpenAI-shaped chat model simulator, priced per token

Try (bash):
  export KEY={key}

  # chat, streamed
  curl -N http://{p}/chat/v1/chat/completions -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' \
    -d '{{"model":"sim-small","stream":true,"messages":[{{"role":"user","content":"stream please"}}]}}'

  # a picture, saved as door.png (needs jq)
  curl -s http://{p}/mediagen/v1/images/generations -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d '{{"prompt":"a door in a wall","size":"512x512"}}' \
    | jq -r '.data[0].b64_json' | base64 -d > door.png

  # a video job ($0.10): poll GET .../v1/videos/<id> until "completed"; the APNG is in .result
  curl -s http://{p}/mediagen/v1/videos -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d '{{"prompt":"waves","seconds":2}}'

  # pictures until the budget runs out: 200 200 ... then 402 budget_exceeded
  for i in $(seq 15); do curl -s -o /dev/null -w '%{{http_code}} ' \
    http://{p}/mediagen/v1/images/generations -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d '{{"prompt":"a door","size":"256x256"}}'; done; echo

  # off the contract (n is at most 4): 400 from the gateway, mediagen never sees it
  curl -i http://{p}/mediagen/v1/images/generations -H "authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d '{{"prompt":"x","n":9}}'

  # what it cost, from the ledger
  cargo run --release -- usage --config {config} --by service

Ctrl-C stops everything.
"#
        );
    }
}
