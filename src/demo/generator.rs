//! Realistic demo requests: names with umlauts and accents, teams, start dates, some malformed.

use crate::store::api::NewRequest;

const FIRST: &[&str] = &[
    "Jürgen",
    "Zoë",
    "Søren",
    "Anaïs",
    "François",
    "Małgorzata",
    "José",
    "Björn",
    "Chloé",
    "Ögün",
    "Renée",
    "Håkon",
    "Iñaki",
    "Dörte",
    "Noémie",
    "Łukasz",
    "Ævar",
    "Matthäus",
    "Inès",
    "Grégoire",
    "Amelia",
    "Oliver",
    "Priya",
    "Kenji",
    "Fatima",
    "Liam",
    "Sofia",
    "Mateo",
    "Aisha",
    "Tomasz",
];
const LAST: &[&str] = &[
    "Groß",
    "Müller",
    "Ångström",
    "Kierkegaard",
    "Dubois",
    "Brzęczyszczykiewicz",
    "García Márquez",
    "Öztürk",
    "Løvik",
    "Schröder",
    "Núñez",
    "Weiß",
    "Fernández",
    "Jäger",
    "Çelik",
    "Lefèvre",
    "Smith",
    "Okafor",
    "Tanaka",
    "Kowalski",
    "Rossi",
    "Haddad",
    "Nguyễn",
    "O'Brien",
    "Meyer-Lüdenscheid",
];
/// Teams and the demo workflow each one uses.
pub const TEAMS: &[(&str, &str)] = &[
    ("engineering", "engineering-joiner"),
    ("sales", "sales-joiner"),
    ("finance", "finance-joiner"),
];
const REQUESTERS: &[&str] = &[
    "hr@example.com",
    "it-desk@example.com",
    "people-ops@example.com",
];

/// A seeded generator of demo requests.
pub struct Generator {
    rng: fastrand::Rng,
    count: u64,
}

impl Generator {
    /// A generator; the same seed yields the same sequence.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            count: 0,
        }
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    /// The next request; about one in twelve is malformed (missing last name and e-mail, a
    /// broken address, or a start date that is not a date) so triage has work.
    pub fn next_request(&mut self, today: chrono::NaiveDate) -> NewRequest {
        self.count += 1;
        let first = self.pick(FIRST);
        let last = self.pick(LAST);
        let (team, workflow) = TEAMS[self.rng.usize(..TEAMS.len())];
        let start = today + chrono::Days::new(self.rng.u64(3..45));
        let email_local = crate::domain::username::fold_to_ascii(&format!("{first}.{last}"))
            .to_lowercase()
            .replace([' ', '\''], "");
        let mut name = format!("{first} {last}");
        let mut email = Some(format!("{email_local}@example.com"));
        let mut start_date = start.format("%Y-%m-%d").to_string();
        match self.rng.u32(0..36) {
            0 => {
                name = first.to_string();
                email = None;
            }
            1 => email = Some(format!("{email_local}(at)example.com")),
            2 => start_date = "next monday-ish".to_string(),
            _ => {}
        }
        let kind = "joiner";
        NewRequest {
            workflow: workflow.to_string(),
            kind: kind.to_string(),
            subject_name: name,
            subject_email: email,
            username: None,
            requester: self.pick(REQUESTERS).to_string(),
            source: "demo".to_string(),
            payload: serde_json::json!({
                "team": team,
                "start_date": start_date,
                "title": self.pick(&["Engineer", "Account Executive", "Analyst", "Designer", "Controller"]),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_requests() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid date");
        let a: Vec<_> = (0..20)
            .map({
                let mut g = Generator::new(7);
                move |_| g.next_request(day)
            })
            .collect();
        let b: Vec<_> = (0..20)
            .map({
                let mut g = Generator::new(7);
                move |_| g.next_request(day)
            })
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn some_requests_are_malformed_and_names_carry_accents() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).expect("valid date");
        let mut g = Generator::new(1);
        let all: Vec<_> = (0..500).map(|_| g.next_request(day)).collect();
        assert!(all.iter().any(|r| r.subject_email.is_none()));
        assert!(
            all.iter()
                .any(|r| r.subject_email.as_deref().is_some_and(|e| !e.contains('@')))
        );
        assert!(all.iter().any(|r| !r.subject_name.is_ascii()));
        assert!(
            all.iter()
                .all(|r| TEAMS.iter().any(|(_, w)| *w == r.workflow))
        );
    }
}
