//! Constraints on a value: lengths, counts, numeric bounds, `multipleOf`,
//! `uniqueItems`, `pattern`. Each is a bound the outer schema must not hold
//! tighter than the inner one (see [`super`]).

use super::{Flat, Schemas, lead, types};

/// Keywords bounding a count from above or below. A missing lower bound on
/// a count is 0, a missing upper bound is none.
const COUNTS: [(&str, End); 6] = [
    ("minLength", End::Lower),
    ("maxLength", End::Upper),
    ("minItems", End::Lower),
    ("maxItems", End::Upper),
    ("minProperties", End::Lower),
    ("maxProperties", End::Upper),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Lower,
    Upper,
}

/// A numeric bound: the value and whether it is exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    value: f64,
    exclusive: bool,
}

impl Bound {
    fn inclusive(value: f64) -> Bound {
        Bound {
            value,
            exclusive: false,
        }
    }

    fn show(&self, end: End) -> String {
        let op = match (end, self.exclusive) {
            (End::Lower, false) => ">=",
            (End::Lower, true) => ">",
            (End::Upper, false) => "<=",
            (End::Upper, true) => "<",
        };
        format!("{op} {}", self.value)
    }
}

/// Whether bound `a` excludes values bound `b` allows. A missing bound
/// allows everything.
fn tighter(end: End, a: Option<Bound>, b: Option<Bound>) -> bool {
    match (a, b) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(a), Some(b)) => {
            let beyond = match end {
                End::Lower => a.value > b.value,
                End::Upper => a.value < b.value,
            };
            beyond || (a.value == b.value && a.exclusive && !b.exclusive)
        }
    }
}

pub(super) fn compare(s: &mut Schemas<'_, '_, '_>, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
    for (keyword, end) in COUNTS {
        let count = |f: &Flat<'_>| {
            f.num(keyword)
                .filter(|v| end == End::Upper || *v > 0.0)
                .map(Bound::inclusive)
        };
        check(s, (o, n), end, (count(o), count(n)), keyword, field);
    }
    for end in [End::Lower, End::Upper] {
        let (old, new) = (numeric(o, end), numeric(n, end));
        let keyword = numeric_keyword(o, n, end);
        check(s, (o, n), end, (old, new), keyword, field);
    }
    compare_multiple_of(s, o, n, field);
    compare_unique_items(s, o, n, field);
    compare_pattern(s, o, n, field);
}

/// Reports `keyword` if the outer bound is tighter than the inner one.
fn check(
    s: &mut Schemas<'_, '_, '_>,
    (o, n): (&Flat<'_>, &Flat<'_>),
    end: End,
    (old, new): (Option<Bound>, Option<Bound>),
    keyword: &str,
    field: &str,
) {
    let (outer, inner) = s.outer_inner(old, new);
    if !tighter(end, outer, inner) {
        return;
    }
    let show = |b: Option<Bound>| b.map_or_else(|| "none".to_string(), |b| b.show(end));
    let what = format!(
        "{}{keyword} was {}, now {}",
        lead(field),
        show(old),
        show(new)
    );
    s.report_at(s.rules().constraint, o, n, keyword, &what);
}

/// The effective bound from `minimum`/`exclusiveMinimum` (or the maximum
/// pair): 3.0 writes exclusiveness as a boolean beside the bound, 3.1 as
/// the bound itself; with both, the tighter holds.
fn numeric(f: &Flat<'_>, end: End) -> Option<Bound> {
    let (plain, exclusive) = match end {
        End::Lower => ("minimum", "exclusiveMinimum"),
        End::Upper => ("maximum", "exclusiveMaximum"),
    };
    let plain = f.num(plain).map(Bound::inclusive);
    let exclusive = if f.is_true(exclusive) {
        plain.map(|b| Bound {
            exclusive: true,
            ..b
        })
    } else {
        f.num(exclusive).map(|value| Bound {
            value,
            exclusive: true,
        })
    };
    if tighter(end, exclusive, plain) {
        exclusive
    } else {
        plain
    }
}

/// The keyword a numeric bound change is reported at: the one written.
fn numeric_keyword(o: &Flat<'_>, n: &Flat<'_>, end: End) -> &'static str {
    let (plain, exclusive) = match end {
        End::Lower => ("minimum", "exclusiveMinimum"),
        End::Upper => ("maximum", "exclusiveMaximum"),
    };
    let written = |f: &Flat<'_>| f.map.get(exclusive).is_some_and(|v| v.is_number());
    if written(n) || written(o) {
        exclusive
    } else {
        plain
    }
}

fn compare_multiple_of(s: &mut Schemas<'_, '_, '_>, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
    let (old, new) = (o.num("multipleOf"), n.num("multipleOf"));
    let (outer, inner) = s.outer_inner(old, new);
    // Integers are multiples of 1 (and of any divisor of 1) already.
    let (_, inner_flat) = s.outer_inner(o, n);
    let integral = types(inner_flat).is_some_and(|t| t.len() == 1 && t.contains("integer"));
    let inner = inner.or(integral.then_some(1.0));
    let Some(outer) = outer else {
        return;
    };
    // Every multiple of the inner step is a multiple of the outer one when
    // the inner step is itself a multiple of the outer.
    if inner.is_some_and(|inner| is_multiple(inner, outer)) {
        return;
    }
    let show = |v: Option<f64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    let what = format!(
        "{}multipleOf was {}, now {}",
        lead(field),
        show(old),
        show(new)
    );
    s.report_at(s.rules().constraint, o, n, "multipleOf", &what);
}

fn is_multiple(value: f64, step: f64) -> bool {
    if step == 0.0 || !value.is_finite() || !step.is_finite() {
        return false;
    }
    let ratio = value / step;
    (ratio - ratio.round()).abs() < 1e-9
}

fn compare_unique_items(s: &mut Schemas<'_, '_, '_>, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
    let (old, new) = (o.is_true("uniqueItems"), n.is_true("uniqueItems"));
    let (outer, inner) = s.outer_inner(old, new);
    if outer && !inner {
        let what = format!("{}uniqueItems was {old}, now {new}", lead(field));
        s.report_at(s.rules().constraint, o, n, "uniqueItems", &what);
    }
}

/// Patterns cannot be compared, so any change of pattern is taken as a
/// tightening; only a removed one is certainly a widening.
fn compare_pattern(s: &mut Schemas<'_, '_, '_>, o: &Flat<'_>, n: &Flat<'_>, field: &str) {
    let (old, new) = (o.str("pattern"), n.str("pattern"));
    let (outer, inner) = s.outer_inner(old, new);
    if outer.is_none() || outer == inner {
        return;
    }
    let what = match (old, new) {
        (Some(a), Some(b)) => format!("{}pattern was `{a}`, now `{b}`", lead(field)),
        (None, Some(b)) => format!("{}pattern `{b}` added", lead(field)),
        (Some(a), None) => format!("{}pattern `{a}` removed", lead(field)),
        (None, None) => return,
    };
    s.report_at(s.rules().constraint, o, n, "pattern", &what);
}
