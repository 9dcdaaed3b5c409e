//! Calendar dates as contracts and configs write them ("2027-03-31"), for
//! deprecation and sunset dates.

/// Unix seconds at the date's UTC midnight; None unless it is a real
/// `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(parse_date("2026-11-01"), Some(1_793_491_200));
        assert_eq!(parse_date("2027-02-30"), None);
        assert_eq!(parse_date("2027-13-01"), None);
        assert_eq!(parse_date("next week"), None);
    }
}
