//! Deterministic sample data for the three everyday scenarios (used by the local pipeline,
//! the tests and the benchmarks): the same seed always gives the same bytes.

/// SplitMix64: small, fast, good enough for test data, and stable across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`: the same seed, the same data.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    /// One random edit of `v`, for the tests that feed decoders broken input: a byte drawn from
    /// `alphabet` replaces one of `v`'s, or is inserted, or one of `v`'s bytes is removed.
    pub fn mutate(&mut self, v: &mut Vec<u8>, alphabet: &[u8]) {
        let at = self.below(v.len() as u64 + 1) as usize;
        let c = alphabet[self.below(alphabet.len() as u64) as usize];
        match self.below(3) {
            0 if at < v.len() => v[at] = c,
            1 if at < v.len() => {
                v.remove(at);
            }
            _ => v.insert(at, c),
        }
    }
}

const FIRST: &[&str] = &["Anna", "Boris", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Katya", "Liam"];
const LAST: &[&str] =
    &["Ivanova", "Smith", "Dubois", "Petrov", "Garcia", "Khan", "Muller", "Tanaka", "Silva", "Berg", "Novak", "Brown"];
const JOBS: &[&str] = &["Engineer", "Accountant", "Teacher", "Nurse", "Designer", "Analyst", "Chef", "Pilot", "Lawyer", "Farmer"];
const STREETS: &[&str] = &["Main Street", "Lenina Prospekt", "Rue de Rivoli", "Baker Street", "Unter den Linden", "Gran Via"];
const COUNTRIES: &[&str] = &["Russia", "United Kingdom", "France", "Germany", "Spain", "United States", "Japan", "Brazil"];
const DOMAINS: &[&str] = &["example.com", "mail.example.org", "corp.example.net"];
/// The branches of the transaction records.
pub const BRANCHES: &[&str] = &["Moscow", "London", "Berlin", "Paris", "Madrid"];
/// The currencies of the transaction records.
pub const CURRENCIES: &[&str] = &["RUB", "USD", "EUR", "GBP"];

/// 2026-11-22T00:00:00Z in microseconds.
pub const BASE_MICROS: i64 = 1_795_305_600_000_000;

fn iso_micros(us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// One `customer_data` record as JSON (about 245 bytes): name, mail, job, address, country,
/// age, salary, register_date (`YYYY-MM-DD`), timestamp (ISO-8601 with microseconds).
pub fn customer(rng: &mut Rng, i: u64) -> String {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let ts = BASE_MICROS + (i as i64) * 3_600_000 + rng.below(1_000_000) as i64;
    let reg_days = rng.below(3650) as i64;
    let reg = chrono::NaiveDate::from_ymd_opt(2016, 1, 1).unwrap_or_default() + chrono::Days::new(reg_days as u64);
    format!(
        r#"{{"name":"{first} {last}","mail":"{}.{}{}@{}","job":"{}","address":"{} {}, apt {}","country":"{}","age":{},"salary":{},"register_date":"{}","timestamp":"{}"}}"#,
        first.to_lowercase(),
        last.to_lowercase(),
        rng.below(1000),
        rng.pick(DOMAINS),
        rng.pick(JOBS),
        1 + rng.below(250),
        rng.pick(STREETS),
        1 + rng.below(400),
        rng.pick(COUNTRIES),
        18 + rng.below(60),
        20_000 + rng.below(180_000),
        reg.format("%Y-%m-%d"),
        iso_micros(ts),
    )
}

/// One `transaction` record: branch, currency, amount (negative for sales).
pub fn transaction(rng: &mut Rng) -> String {
    let amount = 1 + rng.below(10_000) as i64;
    let amount = if rng.below(2) == 0 { -amount } else { amount };
    format!(r#"{{"branch":"{}","currency":"{}","amount":{amount}}}"#, rng.pick(BRANCHES), rng.pick(CURRENCIES))
}

/// One `names_topic` record. `zip` is an md5-sized 128-bit number sent as a bare JSON integer,
/// as the real producer does: it lands in a `string` column holding its exact digits.
pub fn name_record(rng: &mut Rng) -> String {
    let zip = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    let first = rng.pick(FIRST);
    format!(
        r#"{{"name":"{first} {}","gender":"{}","address":"{} {}","city":"{}","nation":"{}","zip":{zip},"latitude":{:.6},"longitude":{:.6},"email":"{}@{}"}}"#,
        rng.pick(LAST),
        rng.pick(&["F", "M", "X"]),
        1 + rng.below(250),
        rng.pick(STREETS),
        rng.pick(BRANCHES),
        rng.pick(COUNTRIES),
        (rng.below(180_000_000) as f64) / 1e6 - 90.0,
        (rng.below(360_000_000) as f64) / 1e6 - 180.0,
        first.to_lowercase(),
        rng.pick(DOMAINS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_realistic() {
        let a: Vec<String> = (0..100)
            .map({
                let mut r = Rng::new(7);
                move |i| customer(&mut r, i)
            })
            .collect();
        let b: Vec<String> = (0..100)
            .map({
                let mut r = Rng::new(7);
                move |i| customer(&mut r, i)
            })
            .collect();
        assert_eq!(a, b);
        let avg = a.iter().map(|s| s.len()).sum::<usize>() / a.len();
        assert!((200..=290).contains(&avg), "average customer record is {avg} bytes");
        for s in &a {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(v["timestamp"].as_str().unwrap().len(), 26);
        }
        let mut r = Rng::new(1);
        assert!(serde_json::from_str::<serde_json::Value>(&transaction(&mut r)).is_ok());
        assert!(name_record(&mut r).contains("\"zip\":"));
    }
}
