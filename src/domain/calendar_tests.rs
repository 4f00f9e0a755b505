//! Tests of business-hours calendars: the document's checks, and deadlines across weekends,
//! holidays, starts outside working hours, several days, and both daylight-saving changes —
//! each compared with a minute-by-minute count of working time.

use chrono::Timelike;

use super::*;

fn spec(zone: &str, days: &[&str], hours: &str, holidays: &[&str]) -> CalendarSpec {
    CalendarSpec {
        time_zone: zone.into(),
        days: days.iter().map(|d| d.to_string()).collect(),
        hours: hours.into(),
        holidays: holidays.iter().map(|d| d.to_string()).collect(),
    }
}

const WEEK: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];
const ALL: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn berlin() -> Calendar {
    spec("Europe/Berlin", &WEEK, "09:00-17:00", &["2026-12-25"])
        .compile()
        .expect("calendar")
}

/// A UTC instant from `YYYY-MM-DD HH:MM`.
fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .expect("time")
        .and_utc()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

#[test]
fn within_one_working_day() {
    // Tuesday 3 March 2026, Berlin is UTC+1: 10:00 local is 09:00 UTC.
    let c = berlin();
    assert_eq!(
        c.add(utc("2026-03-03 09:00"), hours(2)),
        Some(utc("2026-03-03 11:00"))
    );
    assert_eq!(
        c.add(utc("2026-03-03 09:00"), Duration::ZERO),
        Some(utc("2026-03-03 09:00"))
    );
    // Exactly to the close: the deadline is the close itself, not the next opening.
    assert_eq!(
        c.add(utc("2026-03-03 08:00"), hours(8)),
        Some(utc("2026-03-03 16:00"))
    );
}

#[test]
fn the_rest_carries_to_the_next_working_day() {
    let c = berlin();
    // Tue 16:00 local + 2h: one hour today, one tomorrow from 09:00.
    assert_eq!(
        c.add(utc("2026-03-03 15:00"), hours(2)),
        Some(utc("2026-03-04 09:00"))
    );
    // Friday 16:00 + 2h: over the weekend to Monday 10:00.
    assert_eq!(
        c.add(utc("2026-03-06 15:00"), hours(2)),
        Some(utc("2026-03-09 09:00"))
    );
}

#[test]
fn a_start_outside_working_hours_counts_from_the_next_opening() {
    let c = berlin();
    // Before opening (07:00 local), after closing (20:00 local), on Saturday.
    assert_eq!(
        c.add(utc("2026-03-03 06:00"), hours(1)),
        Some(utc("2026-03-03 09:00"))
    );
    assert_eq!(
        c.add(utc("2026-03-03 19:00"), hours(1)),
        Some(utc("2026-03-04 09:00"))
    );
    assert_eq!(
        c.add(utc("2026-03-07 11:00"), hours(1)),
        Some(utc("2026-03-09 09:00"))
    );
    // Local Saturday 00:30 is Friday 23:30 UTC: the local date decides.
    assert_eq!(
        c.add(utc("2026-03-06 23:30"), minutes(30)),
        Some(utc("2026-03-09 08:30"))
    );
}

#[test]
fn holidays_are_skipped() {
    let c = berlin();
    // Thu 24 Dec 16:00 local + 2h: 1h on Thursday, Friday 25th is a holiday, then the weekend.
    assert_eq!(
        c.add(utc("2026-12-24 15:00"), hours(2)),
        Some(utc("2026-12-28 09:00"))
    );
    // Without the holiday, Friday.
    let open = spec("Europe/Berlin", &WEEK, "09:00-17:00", &[])
        .compile()
        .expect("calendar");
    assert_eq!(
        open.add(utc("2026-12-24 15:00"), hours(2)),
        Some(utc("2026-12-25 09:00"))
    );
    assert!(!c.is_working_day(NaiveDate::from_ymd_opt(2026, 12, 25).expect("date")));
}

#[test]
fn durations_of_several_days() {
    let c = berlin();
    // Monday 2 March 09:00 local + 40h = the whole week, ending Friday at 17:00.
    assert_eq!(
        c.add(utc("2026-03-02 08:00"), hours(40)),
        Some(utc("2026-03-06 16:00"))
    );
    assert_eq!(
        c.add(utc("2026-03-02 08:00"), hours(41)),
        Some(utc("2026-03-09 09:00"))
    );
    // Three weeks of working time end three weeks later.
    assert_eq!(
        c.add(utc("2026-03-02 08:00"), hours(120)),
        Some(utc("2026-03-20 16:00"))
    );
}

#[test]
fn daylight_saving_time_changes() {
    let all = spec("Europe/Berlin", &ALL, "09:00-17:00", &[])
        .compile()
        .expect("calendar");
    // Saturday 28 March 16:00 CET (15:00 UTC) + 2h: one hour to 17:00 CET, one from
    // Sunday 09:00, which is CEST (07:00 UTC).
    assert_eq!(
        all.add(utc("2026-03-28 15:00"), hours(2)),
        Some(utc("2026-03-29 08:00"))
    );
    // Autumn back: Saturday 24 October 17:00 CEST is 15:00 UTC; Sunday 09:00 CET is 08:00 UTC.
    assert_eq!(
        all.add(utc("2026-10-24 14:00"), hours(2)),
        Some(utc("2026-10-25 09:00"))
    );
    // Working hours across the change: 01:00-04:00 local is 2h of real time in spring, 4h in
    // autumn.
    let night = spec("Europe/Berlin", &ALL, "01:00-04:00", &[])
        .compile()
        .expect("calendar");
    assert_eq!(
        night.add(utc("2026-03-29 00:00"), hours(2)),
        Some(utc("2026-03-29 02:00"))
    );
    assert_eq!(
        night.add(utc("2026-03-29 00:00"), hours(3)),
        Some(utc("2026-03-30 00:00"))
    );
    assert_eq!(
        night.add(utc("2026-10-24 23:00"), hours(4)),
        Some(utc("2026-10-25 03:00"))
    );
    // An opening in the skipped hour is the first instant after the gap (03:00 CEST).
    let gap = spec("Europe/Berlin", &ALL, "02:30-05:00", &[])
        .compile()
        .expect("calendar");
    assert_eq!(
        gap.add(utc("2026-03-28 23:00"), minutes(30)),
        Some(utc("2026-03-29 01:30"))
    );
    // An opening in the repeated hour is its first occurrence (02:30 CEST, 00:30 UTC).
    assert_eq!(
        gap.add(utc("2026-10-24 23:00"), minutes(30)),
        Some(utc("2026-10-25 01:00"))
    );
}

#[test]
fn an_end_of_24_00_runs_to_midnight() {
    let c = spec("UTC", &["mon"], "22:00-24:00", &[])
        .compile()
        .expect("calendar");
    // Monday 2 March 2026 22:00 UTC + 3h: 2h on Monday, 1h a week later.
    assert_eq!(
        c.add(utc("2026-03-02 21:00"), hours(3)),
        Some(utc("2026-03-09 23:00"))
    );
}

/// Working minutes in `[from, to)` counted one minute at a time from the wall clock.
fn counted(c: &Calendar, spec: &CalendarSpec, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let (open, close) = spec.hours.split_once('-').expect("hours");
    let minute_of = |t: &str| {
        let (h, m) = t.split_once(':').expect("hh:mm");
        h.parse::<i64>().expect("h") * 60 + m.parse::<i64>().expect("m")
    };
    let (open, close) = (minute_of(open), minute_of(close));
    let mut n = 0;
    let mut t = from;
    while t < to {
        let local = t.with_timezone(&c.zone);
        let m = i64::from(local.hour()) * 60 + i64::from(local.minute());
        if c.is_working_day(local.date_naive()) && m >= open && m < close {
            n += 1;
        }
        t += chrono::Duration::minutes(1);
    }
    n
}

#[test]
fn every_deadline_holds_exactly_the_working_time_asked_for() {
    let cases = [
        spec("Europe/Berlin", &WEEK, "09:00-17:00", &["2026-03-30"]),
        spec("Europe/Berlin", &ALL, "01:00-04:00", &[]),
        spec(
            "America/New_York",
            &["mon", "wed", "sat"],
            "08:30-12:15",
            &[],
        ),
    ];
    // Starts every 211 minutes over the days around both changes of 2026 (EU and US).
    let windows = [
        utc("2026-03-05 00:00"),
        utc("2026-03-26 00:00"),
        utc("2026-10-22 00:00"),
    ];
    for spec in &cases {
        let c = spec.compile().expect("calendar");
        for window in windows {
            let mut start = window;
            while start < window + chrono::Duration::days(6) {
                for business in [1u64, 59, 601, 1500] {
                    let end = c.add(start, minutes(business)).expect("deadline");
                    let got = counted(&c, spec, start, end);
                    assert_eq!(
                        got,
                        i64::try_from(business).expect("small"),
                        "{spec:?} from {start} + {business}m = {end}"
                    );
                    // And not a minute later than needed: the last minute counted is working.
                    let last = end - chrono::Duration::minutes(1);
                    assert_eq!(
                        counted(&c, spec, last, end),
                        1,
                        "{spec:?} from {start} + {business}m = {end} ends late"
                    );
                }
                start += chrono::Duration::minutes(211);
            }
        }
    }
}

#[test]
fn milliseconds_follow_the_same_rule() {
    let c = berlin();
    let start = utc("2026-03-06 15:00").timestamp_millis();
    assert_eq!(
        c.add_ms(start, 2 * 3_600_000),
        utc("2026-03-09 09:00").timestamp_millis()
    );
    assert_eq!(c.add_ms(start, 0), start);
}

#[test]
fn the_document_is_checked_field_by_field() {
    let fields = |s: CalendarSpec| -> Vec<String> {
        s.validate()
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    };
    assert!(fields(spec("Europe/Berlin", &WEEK, "09:00-17:00", &["2026-12-25"])).is_empty());
    assert!(fields(spec("UTC", &["Sun"], "00:00-24:00", &[])).is_empty());
    assert_eq!(
        fields(spec(
            "Europe/Berlinn",
            &["mon", "funday", "mon"],
            "9-17",
            &["25.12.2026"]
        )),
        [
            "calendar.time_zone: \"Europe/Berlinn\" is not a time zone: use an IANA name such as Europe/Berlin",
            "calendar.days[1]: \"funday\" is not a day: use mon, tue, wed, thu, fri, sat or sun",
            "calendar.days[2]: \"mon\" listed twice",
            "calendar.hours: \"9-17\" is not HH:MM-HH:MM (e.g. 09:00-17:00)",
            "calendar.holidays[0]: \"25.12.2026\" is not a date like 2026-12-25",
        ]
    );
    assert_eq!(
        fields(spec("UTC", &[], "17:00-09:00", &[])),
        [
            "calendar.days: name at least one working day",
            "calendar.hours: \"17:00-09:00\": the end must be after the start",
        ]
    );
    for bad in [
        "24:00-24:00",
        "09:60-10:00",
        "09:00-24:01",
        "09:00",
        "0900-1000",
    ] {
        assert_eq!(
            fields(spec("UTC", &WEEK, bad, &[])).len(),
            1,
            "{bad} is refused"
        );
    }
    // Monday to Friday unless the document says otherwise.
    let parsed: CalendarSpec =
        toml::from_str("time_zone = \"UTC\"\nhours = \"09:00-17:00\"\n").expect("parses");
    assert_eq!(parsed.days, ["mon", "tue", "wed", "thu", "fri"]);
}

#[test]
fn config_check_names_the_line_and_column() {
    let text = "kind = \"workflow\"\nname = \"w\"\nteam = \"t\"\n\n[intake]\nsources = [\"cli\"]\nkinds = [\"joiner\"]\n\n[[stages]]\nname = \"manager\"\npolicy = \"any\"\npeople = [\"ann\"]\nremind_after = \"1h\"\n\n[[stages]]\nname = \"second\"\npolicy = \"any\"\npeople = [\"ann\", \"bob\"]\ncarry_forward = true\n\n[calendar]\ntime_zone = \"Mars/Olympus\"\ndays = [\"mon\", \"fry\"]\nhours = \"9:00-17:00\"\n";
    let errors = crate::domain::config::check_document("w.toml", text).expect_err("invalid");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "w.toml:22:13: calendar.time_zone: \"Mars/Olympus\" is not a time zone: use an IANA name such as Europe/Berlin",
            "w.toml:23:16: calendar.days[1]: \"fry\" is not a day: use mon, tue, wed, thu, fri, sat or sun",
            "w.toml:24:9: calendar.hours: \"9:00-17:00\" is not HH:MM-HH:MM (e.g. 09:00-17:00)",
        ]
    );
    let good = text
        .replace("Mars/Olympus", "Europe/Berlin")
        .replace("\"fry\"", "\"fri\"")
        .replace("9:00-17:00", "09:00-17:00");
    let doc = crate::domain::config::check_document("w.toml", &good).expect("valid");
    let crate::domain::config::ConfigDocument::Workflow(workflow) = doc else {
        panic!("a workflow");
    };
    assert!(workflow.business_calendar().is_some());
    assert!(workflow.stages[1].carry_forward);
    // carry_forward on the first stage is refused where it is written.
    let first = good.replacen(
        "remind_after = \"1h\"",
        "remind_after = \"1h\"\ncarry_forward = true",
        1,
    );
    let errors = crate::domain::config::check_document("w.toml", &first).expect_err("invalid");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "w.toml:14:17: stages[0].carry_forward: the first stage has no earlier stage to carry a decision from"
        ]
    );
}
