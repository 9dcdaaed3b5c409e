//! Money without floats: amounts in integer micro-dollars, prices as exact
//! pico-dollars per unit, parsed from decimal strings at the edge.

use std::fmt;

/// Pico-dollars in a micro-dollar.
const PICO_PER_MICRO: u128 = 1_000_000;
/// Most decimal places a price may have (pico-dollar precision).
const MAX_DECIMALS: u32 = 12;

/// An amount of money in micro-dollars (1e-6 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub u64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// Parses `"0.05"`, `"12"`, `"0.000001"` (at most 6 decimals).
    pub fn parse(s: &str) -> Result<Money, String> {
        let pico = parse_decimal_pico(s)?;
        if pico % PICO_PER_MICRO != 0 {
            return Err(format!("amount {s:?} has more than 6 decimal places"));
        }
        u64::try_from(pico / PICO_PER_MICRO)
            .map(Money)
            .map_err(|_| format!("amount {s:?} is too large"))
    }

    pub fn micros(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

/// Decimal dollars with 6 places, as SPEC's reports show them ("0.050000"
/// trimmed to "0.05").
impl fmt::Display for Money {
    // Written digit by digit: this runs on every metered response (the
    // cost header), where the formatting machinery costs more than the
    // rest of pricing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut whole = itoa::Buffer::new();
        f.write_str(whole.format(self.0 / 1_000_000))?;
        let mut frac = self.0 % 1_000_000;
        if frac == 0 {
            return Ok(());
        }
        let mut digits = *b".000000";
        for d in digits[1..].iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        let end = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
        // Only ASCII digits and a dot were written.
        f.write_str(std::str::from_utf8(&digits[..end]).map_err(|_| fmt::Error)?)
    }
}

/// A price per unit, exact to the pico-dollar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pico_per_unit: u128,
}

impl Price {
    /// Parses `"0.04"` (per unit), `"0.15/1M"` (per million), `"3/1K"`,
    /// `"0.5/1000"`.
    pub fn parse(s: &str) -> Result<Price, String> {
        let (amount, per) = match s.split_once('/') {
            None => (s, 1u128),
            Some((amount, per)) => (
                amount,
                parse_per(per.trim()).ok_or_else(|| {
                    format!("price {s:?}: after '/' write 1K, 1M, 1B or a whole number")
                })?,
            ),
        };
        let pico = parse_decimal_pico(amount.trim()).map_err(|e| format!("price {s:?}: {e}"))?;
        if pico % per != 0 {
            return Err(format!("price {s:?} is finer than a pico-dollar per unit"));
        }
        Ok(Price {
            pico_per_unit: pico / per,
        })
    }

    /// Pico-dollars for `units` units (no rounding yet).
    pub fn pico_for(self, units: u64) -> u128 {
        self.pico_per_unit.saturating_mul(u128::from(units))
    }
}

/// Rounds pico-dollars to micro-dollars, half up.
pub fn pico_to_money(pico: u128) -> Money {
    let micros = (pico + PICO_PER_MICRO / 2) / PICO_PER_MICRO;
    Money(u64::try_from(micros).unwrap_or(u64::MAX))
}

fn parse_per(s: &str) -> Option<u128> {
    let (number, factor) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1_000u128),
        'M' | 'm' => (&s[..s.len() - 1], 1_000_000),
        'B' | 'b' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let n: u128 = number.parse().ok()?;
    (n > 0).then(|| n.checked_mul(factor)).flatten()
}

/// "12.345" dollars to pico-dollars, exactly.
fn parse_decimal_pico(s: &str) -> Result<u128, String> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(format!("{s:?} is not a decimal amount like \"0.05\""));
    }
    if frac.len() as u32 > MAX_DECIMALS {
        return Err(format!("{s:?} has more than {MAX_DECIMALS} decimal places"));
    }
    let whole: u128 = whole.parse().map_err(|_| format!("{s:?} is too large"))?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| format!("{s:?} is invalid"))?
    };
    let scale = 10u128.pow(MAX_DECIMALS - frac.len() as u32);
    whole
        .checked_mul(10u128.pow(MAX_DECIMALS))
        .and_then(|w| w.checked_add(frac_value * scale))
        .filter(|p| *p <= u128::from(u64::MAX) * PICO_PER_MICRO)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(Money::parse("0.04"), Ok(Money(40_000)));
        assert_eq!(Money::parse("12"), Ok(Money(12_000_000)));
        assert_eq!(Money::parse("0.000001"), Ok(Money(1)));
        assert!(Money::parse("0.0000001").is_err());
        assert!(Money::parse("-1").is_err());
        assert!(Money::parse("1e3").is_err());
        assert!(Money::parse("").is_err());
        assert_eq!(Money(50_000).to_string(), "0.05");
        assert_eq!(Money(12_000_000).to_string(), "12");
        assert_eq!(Money(1).to_string(), "0.000001");
        assert_eq!(Money(0).to_string(), "0");
        assert_eq!(Money(1_230_400).to_string(), "1.2304");
        assert_eq!(Money(u64::MAX).to_string(), "18446744073709.551615");
        // Every amount reads back as itself.
        for micros in [7, 10, 100_001, 999_999, 1_000_001, 40_500, 123_456_789] {
            assert_eq!(Money::parse(&Money(micros).to_string()), Ok(Money(micros)));
        }
    }

    #[test]
    fn prices_per_unit_and_per_million() {
        let per_token = Price::parse("0.15/1M").unwrap();
        assert_eq!(per_token.pico_for(1_000_000), 150_000_000_000);
        assert_eq!(pico_to_money(per_token.pico_for(1_000_000)), Money(150_000));
        assert_eq!(
            pico_to_money(per_token.pico_for(9)),
            Money(1),
            "1.35 micro-dollars round to 1"
        );
        assert_eq!(
            pico_to_money(per_token.pico_for(10)),
            Money(2),
            "1.5 rounds half up"
        );
        let image = Price::parse("0.04").unwrap();
        assert_eq!(pico_to_money(image.pico_for(3)), Money(120_000));
        assert_eq!(
            Price::parse("3/1K").unwrap().pico_for(1000),
            3_000_000_000_000
        );
        for bad in [
            "x",
            "0.1/0",
            "0.1/1Q",
            "1/",
            "0.0000000000001",
            "0.000000000001/1M",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn huge_values_saturate_rather_than_wrap() {
        let p = Price::parse("1000").unwrap();
        assert_eq!(pico_to_money(p.pico_for(u64::MAX)), Money(u64::MAX));
    }
}
