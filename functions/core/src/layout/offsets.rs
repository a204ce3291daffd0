//! Sets of Kafka offsets per topic-partition.

use std::collections::BTreeMap;

use crate::layout::FileRange;

/// Which offsets of which topic-partitions a time partition already holds, from the names of
/// the files in it.
#[derive(Debug, Default, Clone)]
pub struct Coverage {
    ranges: BTreeMap<(String, i32), Vec<(i64, i64)>>,
}

impl Coverage {
    /// From the data files listed under a partition prefix; other files are ignored.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Coverage::from_files(keys, ".parquet")
    }

    /// From the files named by offset range with this extension (`.parquet` data files,
    /// `.jsonl` dead-letter files); other keys are ignored.
    pub fn from_files<'a>(keys: impl IntoIterator<Item = &'a str>, extension: &str) -> Self {
        let mut c = Coverage::default();
        for key in keys {
            let name = key.rsplit('/').next().unwrap_or(key);
            if !name.ends_with(extension) {
                continue;
            }
            if let Some(r) = FileRange::parse(name) {
                c.add(&r);
            }
        }
        c
    }

    pub fn extend(&mut self, other: &Coverage) {
        for (k, v) in &other.ranges {
            self.ranges.entry(k.clone()).or_default().extend(v.iter().copied());
        }
    }

    pub fn add(&mut self, r: &FileRange) {
        self.ranges.entry((r.topic.clone(), r.partition)).or_default().push((r.first, r.last));
    }

    pub fn covers(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.ranges.get(&(topic.to_string(), partition)).is_some_and(|rs| rs.iter().any(|(a, b)| (*a..=*b).contains(&offset)))
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}
