//! The one-pass reader behind [`super::from_body`]: a serde visitor that
//! walks a JSON body once, descends only where some pointer leads, keeps
//! the values pointers name, and checks (but keeps nothing of) the rest.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Visitor methods that accept any scalar and answer `$answer`.
macro_rules! scalars {
    ($answer:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($answer)
        }
    };
}

/// What a pointer asks of the value it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Number,
    Len,
    /// The top-level `model` string.
    Model,
}

/// A pointer split into its reference tokens; `None` if it is not a
/// pointer at all (no leading `/`), which names nothing.
pub(super) struct Target {
    pub(super) path: Option<Vec<String>>,
    pub(super) want: Want,
}

impl Target {
    pub(super) fn new(pointer: &str, want: Want) -> Target {
        let path = match pointer {
            "" => Some(Vec::new()),
            p => p.strip_prefix('/').map(|rest| {
                rest.split('/')
                    .map(|t| t.replace("~1", "/").replace("~0", "~"))
                    .collect()
            }),
        };
        Target { path, want }
    }

    fn token(&self, depth: usize) -> Option<&str> {
        self.path.as_ref()?.get(depth).map(String::as_str)
    }

    fn ends_at(&self, depth: usize) -> bool {
        self.path.as_ref().is_some_and(|p| p.len() == depth)
    }
}

/// What was found at each target: a value (numbers and model), an array
/// length, or "there, but not an array".
#[derive(Debug, Clone)]
pub(super) enum Found {
    Value(Value),
    Len(u64),
    NotArray,
}

/// An array index as RFC 6901 writes it: digits, no leading zero.
fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// What was found per target, in target order; on the stack for the
/// usual few targets.
pub(super) type Findings = smallvec::SmallVec<[Option<Found>; 4]>;

/// Targets as a bit set: at most [`MAX_TARGETS`].
pub(super) type Mask = u64;
pub(super) const MAX_TARGETS: usize = Mask::BITS as usize;

/// The indexes of the set bits, lowest first.
fn members(mut mask: Mask) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

/// One JSON value, at `depth`, that the `live` targets pass through or end
/// at.
pub(super) struct Node<'a> {
    pub(super) targets: &'a [Target],
    pub(super) found: &'a RefCell<Findings>,
    pub(super) live: Mask,
    pub(super) depth: usize,
}

impl Node<'_> {
    fn select(&self, matches: impl Fn(&Target) -> bool) -> Mask {
        members(self.live)
            .filter(|&i| matches(&self.targets[i]))
            .fold(0, |m, i| m | 1 << i)
    }

    /// The live targets whose next token `matches`.
    fn child(&self, matches: impl Fn(&str) -> bool) -> Mask {
        self.select(|t| t.token(self.depth).is_some_and(&matches))
    }

    /// A later duplicate key replaces an earlier one, as in a parsed value.
    fn forget(&self, live: Mask) {
        let mut found = self.found.borrow_mut();
        for i in members(live) {
            found[i] = None;
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let ending = self.select(|t| t.ends_at(self.depth));
        if ending == 0 {
            return d.deserialize_any(self);
        }
        let only_lengths =
            ending == self.live && members(ending).all(|i| self.targets[i].want == Want::Len);
        if only_lengths {
            // Count the elements without keeping them.
            let len = d.deserialize_any(Counter)?;
            let mut found = self.found.borrow_mut();
            for i in members(ending) {
                found[i] = Some(len.map_or(Found::NotArray, Found::Len));
            }
            return Ok(());
        }
        // A number, the model, or targets both here and below: keep this
        // value and resolve them in it.
        let value = <Value as serde::Deserialize>::deserialize(d)?;
        let mut found = self.found.borrow_mut();
        for i in members(self.live) {
            let t = &self.targets[i];
            let rest = t.path.as_deref().map_or(&[][..], |p| &p[self.depth..]);
            let mut at = Some(&value);
            for token in rest {
                at = at.and_then(|v| match v {
                    Value::Object(m) => m.get(token),
                    Value::Array(a) => index(token).and_then(|n| a.get(n)),
                    _ => None,
                });
            }
            found[i] = at.map(|v| match (t.want, v) {
                (Want::Len, Value::Array(a)) => Found::Len(a.len() as u64),
                (Want::Len, _) => Found::NotArray,
                _ => Found::Value(v.clone()),
            });
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(live) = map.next_key_seed(KeyMatch(&self))? {
            if live == 0 {
                map.next_value_seed(Skip)?;
            } else {
                self.forget(live);
                map.next_value_seed(Node {
                    targets: self.targets,
                    found: self.found,
                    live,
                    depth: self.depth + 1,
                })?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        loop {
            let live = self.child(|t| index(t) == Some(n));
            let more = if live == 0 {
                seq.next_element_seed(Skip)?.is_some()
            } else {
                seq.next_element_seed(Node {
                    targets: self.targets,
                    found: self.found,
                    live,
                    depth: self.depth + 1,
                })?
                .is_some()
            };
            if !more {
                return Ok(());
            }
            n += 1;
        }
    }

    // Scalars hold nothing deeper: targets below them are missing.
    scalars!(());
}

/// Reads an object key into the set of live targets it leads on to,
/// comparing it where it lies (no copy of the key).
struct KeyMatch<'n, 'a>(&'n Node<'a>);

impl<'de> DeserializeSeed<'de> for KeyMatch<'_, '_> {
    type Value = Mask;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Mask, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_, '_> {
    type Value = Mask;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Mask, E> {
        Ok(self.0.child(|t| t == key))
    }
}

/// A value no pointer names: checked as strictly as a parsed value would
/// be (UTF-8, escapes, nesting), kept nowhere. serde's `IgnoredAny` is not
/// enough: it skips strings without checking them, and a body that is not
/// JSON must be flagged, never metered.
#[derive(Clone, Copy)]
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry_seed(Skip, Skip)?.is_some() {}
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    scalars!(());
}

/// An array's length (its elements skipped), or `None` for any other
/// value.
struct Counter;

impl<'de> Visitor<'de> for Counter {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<u64>, A::Error> {
        let mut n = 0;
        while seq.next_element_seed(Skip)?.is_some() {
            n += 1;
        }
        Ok(Some(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
        while map.next_entry_seed(Skip, Skip)?.is_some() {}
        Ok(None)
    }

    scalars!(None);
}
