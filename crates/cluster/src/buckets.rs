//! GCRA buckets in Redis: one key per bucket holding its theoretical
//! arrival time, the same algorithm as the node-local buckets, with time
//! from Redis's clock so replicas' clocks never disagree.

use std::sync::Arc;

use redis::Script;

use crate::{Error, Redis};

/// The window every limit is per.
const WINDOW_US: u64 = 60_000_000;

/// All checks of one request, all-or-nothing: if any refuses, no bucket
/// takes anything. Returns (allowed, backlog µs, retry µs) per key.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out, tats, ok = {}, {}, true
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local interval = tonumber(ARGV[b + 1])
  local capacity = tonumber(ARGV[b + 2])
  local op = ARGV[b + 3]
  local cost = tonumber(ARGV[b + 4]) * interval
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local allowed, backlog, retry, new = 1, tat - now, 0, tat
  if op == 'take' then
    new = tat + cost
    if new - now > capacity then
      allowed, retry = 0, new - now - capacity
    else
      backlog = new - now
    end
  elseif op == 'check' then
    if backlog + interval > capacity then
      allowed, retry = 0, backlog + interval - capacity
    end
  else
    new = tat + cost
    backlog = new - now
  end
  if allowed == 0 then ok = false end
  tats[i] = new
  out[#out + 1] = allowed
  out[#out + 1] = backlog
  out[#out + 1] = retry
end
if ok then
  for i = 1, #KEYS do
    if ARGV[(i - 1) * 4 + 3] ~= 'check' and tats[i] > now then
      redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
    end
  end
end
return out
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketOp {
    /// One request, if it fits.
    Take,
    /// Whether at least one unit is left; takes nothing.
    Check,
    /// Units used, charged whether they fit or not (debt).
    Charge(u64),
}

/// One bucket to check: its key (from [`Buckets::key`]), its limit per
/// minute, and what to do.
#[derive(Debug, Clone)]
pub struct BucketCheck {
    pub key: String,
    pub limit: u64,
    pub op: BucketOp,
}

/// What a bucket said, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_secs: u64,
    pub retry_after_secs: u64,
}

/// Rate-limit buckets shared by the cluster.
#[derive(Debug)]
pub struct Buckets {
    redis: Arc<Redis>,
    script: Script,
}

impl Buckets {
    pub fn new(redis: Arc<Redis>) -> Buckets {
        Buckets {
            redis,
            script: Script::new(SCRIPT),
        }
    }

    /// The key of a bucket named by `parts` (service, policy, caller...).
    pub fn key(&self, parts: &[&str]) -> String {
        let mut all = vec!["rl"];
        all.extend_from_slice(parts);
        self.redis.key(&all)
    }

    /// Runs the checks in one round trip; all-or-nothing for takes.
    pub async fn run(&self, checks: &[BucketCheck]) -> Result<Vec<BucketState>, Error> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.script.prepare_invoke();
        for c in checks {
            let interval = (WINDOW_US / c.limit.max(1)).max(1);
            let (op, n) = match c.op {
                BucketOp::Take => ("take", 1),
                BucketOp::Check => ("check", 0),
                BucketOp::Charge(n) => ("charge", n),
            };
            call.key(&c.key)
                .arg(interval)
                .arg(interval.saturating_mul(c.limit))
                .arg(op)
                .arg(n);
        }
        let flat: Vec<i64> = self.redis.invoke(&call).await?;
        if flat.len() != checks.len() * 3 {
            return Err(Error::Shape(format!(
                "{} numbers for {} buckets",
                flat.len(),
                checks.len()
            )));
        }
        Ok(checks
            .iter()
            .zip(flat.chunks_exact(3))
            .map(|(c, r)| state(c, r[0] == 1, to_u64(r[1]), to_u64(r[2])))
            .collect())
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn state(c: &BucketCheck, allowed: bool, backlog_us: u64, retry_us: u64) -> BucketState {
    let interval = (WINDOW_US / c.limit.max(1)).max(1);
    let capacity = interval.saturating_mul(c.limit);
    BucketState {
        allowed,
        limit: c.limit,
        remaining: capacity.saturating_sub(backlog_us) / interval,
        reset_secs: backlog_us.div_ceil(1_000_000),
        retry_after_secs: retry_us.div_ceil(1_000_000),
    }
}
