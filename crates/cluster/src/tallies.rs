//! Budget tallies in Redis: per budget and period, one hash holding what
//! the cluster has spent (`settled`) and that plus the reservations of
//! requests in flight anywhere (`used`). A hard budget admits a request
//! only if its reservation fits under the amount, so the overshoot bound
//! of a single node holds for the cluster.
//!
//! Redis keeps nothing on disk here: each call carries the node's own
//! figure for the period's spend (from the ledger, or the last tally it
//! saw), and a tally below it is raised to it, so a restarted Redis
//! picks up where the ledger is.

use std::sync::Arc;

use redis::Script;

use crate::{Error, Redis};

/// KEYS: tallies. ARGV: estimate, then per tally: amount, hard (0/1),
/// floor, ttl ms (0: none). Returns {1, 0, used1, settled1, ...} when all
/// reserved, {0, i, used_i, settled_i} when tally i refused.
const RESERVE: &str = r"
local est = tonumber(ARGV[1])
local used, settled = {}, {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 4
  local amount, hard, floor, ttl = tonumber(ARGV[b + 1]), ARGV[b + 2] == '1', tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local u = tonumber(redis.call('HGET', KEYS[i], 'used') or '0')
  local s = tonumber(redis.call('HGET', KEYS[i], 'settled') or '0')
  if s < floor then
    u, s = u + floor - s, floor
    redis.call('HSET', KEYS[i], 'used', u, 'settled', s)
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
  if hard and (u >= amount or u + est > amount) then
    return {0, i, u, s}
  end
  used[i], settled[i] = u, s
end
local out = {1, 0}
for i = 1, #KEYS do
  local ttl = tonumber(ARGV[1 + (i - 1) * 4 + 4])
  out[#out + 1] = redis.call('HINCRBY', KEYS[i], 'used', est)
  out[#out + 1] = settled[i]
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return out
";

/// KEYS: tallies. ARGV: estimate, actual, then per tally: amount, ttl ms,
/// alert thresholds as "50,80,100". Returns per tally: used, settled,
/// thresholds this settlement crossed first in the cluster ("80" or "").
const SETTLE: &str = r"
local est, actual = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS do
  local b = 2 + (i - 1) * 3
  local amount, ttl, alerts = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), ARGV[b + 3]
  local u = redis.call('HINCRBY', KEYS[i], 'used', actual - est)
  local s = redis.call('HINCRBY', KEYS[i], 'settled', actual)
  if u < s then
    redis.call('HSET', KEYS[i], 'used', s)
    u = s
  end
  local crossed = {}
  if actual > 0 then
    for t in string.gmatch(alerts, '%d+') do
      if s * 100 >= amount * tonumber(t) and redis.call('HSETNX', KEYS[i], 'alerted:' .. t, 1) == 1 then
        crossed[#crossed + 1] = t
      end
    end
  end
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  out[#out + 1] = u
  out[#out + 1] = s
  out[#out + 1] = table.concat(crossed, ',')
end
return out
";

/// One budget's tally for the current period.
#[derive(Debug, Clone)]
pub struct TallyKey {
    pub key: String,
    /// Micro-dollars per period.
    pub amount: i64,
    pub hard: bool,
    /// What this node knows the period has cost at least.
    pub floor: i64,
    /// Keep the tally this long (the rest of the period and a margin);
    /// None: for ever (a `total` budget).
    pub ttl_ms: Option<u64>,
    pub alerts: Vec<u32>,
}

/// A tally as the cluster has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TallyState {
    /// Settled plus reserved, cluster-wide.
    pub used: i64,
    pub settled: i64,
}

/// Budget tallies shared by the cluster.
#[derive(Debug)]
pub struct Tallies {
    redis: Arc<Redis>,
    reserve: Script,
    settle: Script,
}

impl Tallies {
    pub fn new(redis: Arc<Redis>) -> Tallies {
        Tallies {
            redis,
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
        }
    }

    /// The key of a budget's tally for the period starting at `start_ms`.
    pub fn key(&self, scope: &str, target: &str, period: &str, start_ms: i64) -> String {
        self.redis
            .key(&["budget", scope, target, period, &start_ms.to_string()])
    }

    /// Reserves `estimate` on every tally, all or none. `Err(Ok((i,
    /// state)))`: tally `i` refused (a hard budget without room).
    pub async fn reserve(
        &self,
        tallies: &[TallyKey],
        estimate: i64,
    ) -> Result<Result<Vec<TallyState>, (usize, TallyState)>, Error> {
        let mut call = self.reserve.prepare_invoke();
        call.arg(estimate);
        for t in tallies {
            call.key(&t.key)
                .arg(t.amount)
                .arg(u8::from(t.hard))
                .arg(t.floor)
                .arg(t.ttl_ms.unwrap_or(0));
        }
        let flat: Vec<i64> = self.redis.invoke(&call).await?;
        match flat.as_slice() {
            [1, 0, rest @ ..] if rest.len() == tallies.len() * 2 => Ok(Ok(rest
                .chunks_exact(2)
                .map(|p| TallyState {
                    used: p[0],
                    settled: p[1],
                })
                .collect())),
            [0, i, used, settled] => {
                let i = usize::try_from(*i - 1).unwrap_or(0);
                Ok(Err((
                    i,
                    TallyState {
                        used: *used,
                        settled: *settled,
                    },
                )))
            }
            other => Err(Error::Shape(format!("reserve answered {other:?}"))),
        }
    }

    /// Replaces a reservation of `estimate` by `actual` on every tally.
    /// Returns each tally's state and the alert thresholds this call
    /// crossed first in the cluster (so each alert is raised once).
    pub async fn settle(
        &self,
        tallies: &[TallyKey],
        estimate: i64,
        actual: i64,
    ) -> Result<Vec<(TallyState, Vec<u32>)>, Error> {
        let mut call = self.settle.prepare_invoke();
        call.arg(estimate).arg(actual);
        for t in tallies {
            let alerts: Vec<String> = t.alerts.iter().map(u32::to_string).collect();
            call.key(&t.key)
                .arg(t.amount)
                .arg(t.ttl_ms.unwrap_or(0))
                .arg(alerts.join(","));
        }
        let flat: Vec<redis::Value> = self.redis.invoke(&call).await?;
        if flat.len() != tallies.len() * 3 {
            return Err(Error::Shape(format!("settle answered {flat:?}")));
        }
        flat.chunks_exact(3)
            .map(|r| {
                let used = int(&r[0])?;
                let settled = int(&r[1])?;
                let crossed = text(&r[2])?
                    .split(',')
                    .filter_map(|t| t.parse().ok())
                    .collect();
                Ok((TallyState { used, settled }, crossed))
            })
            .collect()
    }
}

fn int(v: &redis::Value) -> Result<i64, Error> {
    match v {
        redis::Value::Int(n) => Ok(*n),
        other => Err(Error::Shape(format!("expected a number, got {other:?}"))),
    }
}

fn text(v: &redis::Value) -> Result<String, Error> {
    match v {
        redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Ok(s.clone()),
        other => Err(Error::Shape(format!("expected a string, got {other:?}"))),
    }
}
