//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), pure: parsed
//! once at load into bit sets, asked "the next minute after t" with a fixed UTC offset.
//! `*`, `a`, `a-b`, `*/n`, `a-b/n` and lists; day-of-week 0–7 (0 and 7 are Sunday); when
//! both day fields are restricted a day matching either runs (classic cron).

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Which field is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct CronError {
    pub field: &'static str,
    pub problem: String,
}

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Longest look-ahead: a valid expression that never matches (`0 0 31 2 *`) gives `None`.
const HORIZON_MINUTES: i64 = 366 * 24 * 60 * 5;

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError {
                field: "expression",
                problem: format!(
                    "{expr:?} has {} fields; use five: minute hour day-of-month month day-of-week",
                    parts.len()
                ),
            });
        }
        let mut sets = [0u64; 5];
        for (i, (part, (name, lo, hi))) in parts.iter().zip(FIELDS).enumerate() {
            sets[i] = field(part, lo, hi).map_err(|problem| CronError {
                field: name,
                problem,
            })?;
        }
        let weekdays = (sets[4] | (sets[4] >> 7)) as u8 & 0x7f;
        Ok(Cron {
            minutes: sets[0],
            hours: sets[1] as u32,
            days: sets[2] as u32,
            months: sets[3] as u16,
            weekdays,
            days_restricted: parts[2] != "*",
            weekdays_restricted: parts[4] != "*",
        })
    }

    /// The first whole minute strictly after `after` (unix seconds) that matches, read on
    /// a clock `offset_s` seconds east of UTC.
    pub fn next_after(&self, after: i64, offset_s: i64) -> Option<i64> {
        let mut local_min = (after + offset_s).div_euclid(60) + 1;
        for _ in 0..HORIZON_MINUTES {
            let days = local_min.div_euclid(1440);
            let (_, month, day) = civil(days);
            let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday.
            let day_ok = match (self.days_restricted, self.weekdays_restricted) {
                (true, true) => bit(self.days, day) || bit(self.weekdays as u32, weekday),
                _ => bit(self.days, day) && bit(self.weekdays as u32, weekday),
            };
            if !bit(self.months as u32, month) || !day_ok {
                local_min = (days + 1) * 1440;
                continue;
            }
            let minute_of_day = local_min.rem_euclid(1440);
            let (h, m) = ((minute_of_day / 60) as u32, (minute_of_day % 60) as u32);
            if !bit(self.hours, h) {
                local_min = days * 1440 + (h as i64 + 1) * 60;
                continue;
            }
            if (self.minutes >> m) & 1 == 1 {
                return Some(local_min * 60 - offset_s);
            }
            local_min += 1;
        }
        None
    }
}

fn bit(set: u32, i: u32) -> bool {
    (set >> i) & 1 == 1
}

fn field(text: &str, lo: u32, hi: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("step {s:?} is not a positive number"))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, lo, hi)?, number(b, lo, hi)?)
        } else {
            let a = number(range, lo, hi)?;
            (a, if step > 1 { hi } else { a })
        };
        if a > b {
            return Err(format!("range {range:?} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn number(s: &str, lo: u32, hi: u32) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|v| (lo..=hi).contains(v))
        .ok_or_else(|| format!("{s:?} is not a number from {lo} to {hi}"))
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02T03:00:00Z, a Wednesday.
    const T0: i64 = 1_796_180_400;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(T0 / 86_400), (2026, 12, 2));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn next_minutes() {
        let every = Cron::parse("* * * * *").unwrap();
        assert_eq!(every.next_after(T0, 0), Some(T0 + 60));
        assert_eq!(every.next_after(T0 + 59, 0), Some(T0 + 60));
        let daily9 = Cron::parse("0 9 * * *").unwrap();
        assert_eq!(daily9.next_after(T0, 0), Some(T0 + 6 * 3600));
        // 09:00 at -05:00 is 14:00 UTC.
        assert_eq!(daily9.next_after(T0, -5 * 3600), Some(T0 + 11 * 3600));
        let quarter = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(quarter.next_after(T0 + 60, 0), Some(T0 + 15 * 60));
        // Sunday 2026-12-06 00:30.
        let sunday = Cron::parse("30 0 * * 7").unwrap();
        assert_eq!(
            sunday.next_after(T0, 0),
            Some(T0 - 3 * 3600 + 4 * 86_400 + 1800)
        );
        let never = Cron::parse("0 0 31 2 *").unwrap();
        assert_eq!(never.next_after(T0, 0), None);
    }

    #[test]
    fn day_fields_or_when_both_restricted() {
        // The 3rd of the month or a Monday: Thursday 3rd wins over Monday 7th.
        let c = Cron::parse("0 0 3 * 1").unwrap();
        assert_eq!(c.next_after(T0, 0), Some(T0 - 3 * 3600 + 86_400));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(Cron::parse("61 * * * *").unwrap_err().field, "minute");
        assert_eq!(Cron::parse("* 24 * * *").unwrap_err().field, "hour");
        assert_eq!(Cron::parse("* * 0 * *").unwrap_err().field, "day of month");
        assert_eq!(Cron::parse("* * * 13 *").unwrap_err().field, "month");
        assert_eq!(Cron::parse("* * * * mon").unwrap_err().field, "day of week");
        assert_eq!(Cron::parse("*/0 * * * *").unwrap_err().field, "minute");
        assert_eq!(Cron::parse("* * *").unwrap_err().field, "expression");
        assert_eq!(Cron::parse("5-1 * * * *").unwrap_err().field, "minute");
    }
}
