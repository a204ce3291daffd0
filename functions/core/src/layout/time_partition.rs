//! Hive-style time partitions by event time: `dt=YYYY-MM-DD/hr=HH/` (or `dt=` alone by day).

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::config::Granularity;

/// A time partition of a table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimePartition {
    /// `YYYY-MM-DD`
    pub dt: String,
    /// `HH`, with hourly granularity.
    pub hr: Option<String>,
}

impl TimePartition {
    /// The partition a UTC time falls in.
    pub fn from_datetime(t: DateTime<Utc>, g: Granularity) -> Self {
        let dt = format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day());
        let hr = match g {
            Granularity::Hour => Some(format!("{:02}", t.hour())),
            Granularity::Day => None,
        };
        TimePartition { dt, hr }
    }

    /// The partition a time in ms since the epoch falls in (the epoch for one out of range).
    pub fn from_millis(ms: i64, g: Granularity) -> Self {
        Self::from_datetime(DateTime::from_timestamp_millis(ms).unwrap_or_default(), g)
    }

    /// `dt=2026-11-22/hr=03/`
    pub fn path(&self) -> String {
        match &self.hr {
            Some(hr) => format!("dt={}/hr={hr}/", self.dt),
            None => format!("dt={}/", self.dt),
        }
    }

    /// Parses the partition part of a key (`.../dt=2026-11-22/hr=03/...`).
    pub fn from_key(key: &str) -> Option<Self> {
        let mut dt = None;
        let mut hr = None;
        for seg in key.split('/') {
            if let Some(v) = seg.strip_prefix("dt=") {
                dt = Some(v.to_string());
            } else if let Some(v) = seg.strip_prefix("hr=") {
                hr = Some(v.to_string());
            }
        }
        Some(TimePartition { dt: dt?, hr })
    }

    /// The partition values in key order (`["2026-11-22", "03"]`).
    pub fn values(&self) -> Vec<String> {
        std::iter::once(self.dt.clone()).chain(self.hr.clone()).collect()
    }
}

/// The UTC dates (`YYYY-MM-DD`) of the day of `now_ms` and the `lookback_days` days before it,
/// newest first: the days a sweep or a catalog sync visits.
pub fn recent_days(now_ms: i64, lookback_days: u32) -> Vec<String> {
    (0..=i64::from(lookback_days)).map(|d| TimePartition::from_millis(now_ms - d * 86_400_000, Granularity::Day).dt).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_days_count_back_from_today() {
        let now = 1_795_316_400_000; // 2026-11-22T03:00Z
        assert_eq!(recent_days(now, 2), ["2026-11-22", "2026-11-21", "2026-11-20"]);
        assert_eq!(recent_days(now, 0), ["2026-11-22"]);
    }

    #[test]
    fn partition_from_key() {
        let tp = TimePartition::from_key("tables/t/dt=2026-11-22/hr=03/part-x.parquet").unwrap();
        assert_eq!(tp.values(), ["2026-11-22", "03"]);
        assert_eq!(TimePartition::from_key("tables/t/x.parquet"), None);
    }
}
