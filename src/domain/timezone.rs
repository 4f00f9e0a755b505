//! Time zones by IANA name (`Europe/Berlin`), and the local moments mail is scheduled for.

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// The zone named `name` (an IANA name such as `Europe/Berlin` or `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("\"{name}\" is not a time zone: use an IANA name such as Europe/Berlin")
    })
}

/// Milliseconds since the epoch of `hour`:00 local time in `zone` on `date`; when that local
/// time does not exist (a daylight-saving gap) the first moment after the gap.
pub fn local_hour_on(date: NaiveDate, hour: u32, zone: Tz) -> Option<i64> {
    let time = NaiveTime::from_hms_opt(hour, 0, 0)?;
    let local = date.and_time(time);
    match zone.from_local_datetime(&local).earliest() {
        Some(at) => Some(at.timestamp_millis()),
        // In a gap: an hour later always exists (gaps are at most an hour in the tz database
        // for the hours mail is sent at).
        None => zone
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .map(|at| at.timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn zones_by_iana_name() {
        assert_eq!(parse_zone("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(parse_zone(" UTC "), Ok(chrono_tz::UTC));
        let error = parse_zone("Mars/Olympus").expect_err("unknown");
        assert!(error.contains("Mars/Olympus"), "{error}");
        assert!(parse_zone("").is_err());
    }

    #[test]
    fn local_hours_follow_the_zone_and_its_daylight_saving() {
        // Berlin: UTC+1 in winter, UTC+2 in summer.
        let winter = local_hour_on(date("2026-12-14"), 8, chrono_tz::Europe::Berlin);
        assert_eq!(winter, Some(1_797_231_600_000)); // 2026-12-14T07:00:00Z
        let summer = local_hour_on(date("2026-07-14"), 8, chrono_tz::Europe::Berlin);
        assert_eq!(summer, Some(1_784_008_800_000)); // 2026-07-14T06:00:00Z
        let utc = local_hour_on(date("2026-12-14"), 8, chrono_tz::UTC);
        assert_eq!(utc, Some(1_797_235_200_000));
        // 02:00 on the day Berlin springs forward does not exist: 03:00 local (01:00Z) instead.
        let gap = local_hour_on(date("2026-03-29"), 2, chrono_tz::Europe::Berlin);
        assert_eq!(gap, Some(1_774_746_000_000));
        assert_eq!(local_hour_on(date("2026-03-29"), 25, chrono_tz::UTC), None);
    }
}
