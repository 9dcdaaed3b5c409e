//! Budget periods on the UTC calendar.

use time::{Date, Duration, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    /// ISO weeks: Monday 00:00 UTC.
    Week,
    Month,
    /// Never resets.
    Total,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            "total" => Some(Period::Total),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    /// Unix milliseconds at which the period holding `now_ms` began.
    pub fn start(self, now_ms: i64) -> i64 {
        let Ok(now) = OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)) else {
            return 0;
        };
        let day = now.date();
        let first: Date = match self {
            Period::Total => return 0,
            Period::Day => day,
            Period::Week => {
                day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
            }
            Period::Month => day.replace_day(1).unwrap_or(day),
        };
        first
            .with_time(Time::MIDNIGHT)
            .assume_utc()
            .unix_timestamp()
            * 1000
    }

    /// Unix milliseconds at which the period holding `now_ms` ends (the
    /// next one begins); `i64::MAX` for a total.
    pub fn end(self, now_ms: i64) -> i64 {
        const DAY_MS: i64 = 86_400_000;
        let start = self.start(now_ms);
        match self {
            Period::Total => i64::MAX,
            Period::Day => start + DAY_MS,
            Period::Week => start + 7 * DAY_MS,
            Period::Month => {
                // 32 days past the first of a month is always in the next.
                let next = OffsetDateTime::from_unix_timestamp(start / 1000)
                    .ok()
                    .and_then(|first| first.date().checked_add(Duration::days(32)))
                    .and_then(|d| d.replace_day(1).ok());
                next.map_or(i64::MAX, |d| {
                    d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Period;

    /// 2026-11-27T18:33:30Z, a Friday.
    const NOW: i64 = 1_795_804_410_000;

    #[test]
    fn periods_start_on_the_utc_calendar() {
        assert_eq!(
            Period::Day.start(NOW),
            1_795_737_600_000,
            "2026-11-27T00:00Z"
        );
        assert_eq!(
            Period::Week.start(NOW),
            1_795_392_000_000,
            "Monday 2026-11-23"
        );
        assert_eq!(Period::Month.start(NOW), 1_793_491_200_000, "2026-11-01");
        assert_eq!(Period::Total.start(NOW), 0);
        // The first instant of a period is in it.
        let day = Period::Day.start(NOW);
        assert_eq!(Period::Day.start(day), day);
        assert_eq!(Period::Day.start(day - 1), day - 86_400_000);
    }

    #[test]
    fn a_period_ends_where_the_next_one_starts() {
        for p in [Period::Day, Period::Week, Period::Month] {
            let end = p.end(NOW);
            assert!(end > NOW, "{p:?}");
            assert_eq!(
                p.start(end),
                end,
                "{p:?}: the end is a period's first instant"
            );
            assert_eq!(
                p.start(end - 1),
                p.start(NOW),
                "{p:?}: the instant before is still this period"
            );
        }
        assert_eq!(Period::Month.end(NOW), 1_796_083_200_000, "2026-12-01");
        // December rolls into January of the next year.
        assert_eq!(
            Period::Month.end(1_796_083_200_000),
            1_798_761_600_000,
            "2027-01-01"
        );
        assert_eq!(Period::Total.end(NOW), i64::MAX);
    }

    #[test]
    fn periods_parse_from_their_names() {
        for p in [Period::Day, Period::Week, Period::Month, Period::Total] {
            assert_eq!(Period::parse(p.as_str()), Some(p));
        }
        assert_eq!(Period::parse("year"), None);
    }
}
