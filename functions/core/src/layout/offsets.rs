//! Sets of Kafka offsets per topic-partition: what a partition's files hold (from their names),
//! what a compacted version holds (kept in its state), and what a merge has emitted so far.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::layout::FileRange;
use crate::layout::keys::{DATA_FILE_EXTENSION, DEAD_LETTER_EXTENSION};

/// A Kafka topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's number.
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    /// `topic~partition`: `~` cannot occur in a topic name, so the text parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}~{}", self.topic, self.partition)
    }
}

impl TopicPartition {
    /// Parses the text [`Display`](fmt::Display) writes.
    pub fn parse(text: &str) -> Option<TopicPartition> {
        let (topic, partition) = text.rsplit_once('~')?;
        Some(TopicPartition { topic: topic.to_string(), partition: partition.parse().ok()? })
    }

    fn is(&self, topic: &str, partition: i32) -> bool {
        self.partition == partition && self.topic == topic
    }
}

/// Offsets per topic-partition, as sorted, disjoint, inclusive intervals (adjacent ones merged):
/// memory grows with the gaps, not with the offsets. Lookups borrow the topic, so checking a row
/// allocates nothing.
///
/// Stored in a partition's state as `{"<topic>~<partition>": [[first, last], …]}`.
#[derive(Debug, Clone, Default)]
pub struct OffsetSet {
    /// Sorted by topic-partition.
    tps: Vec<(TopicPartition, Vec<(i64, i64)>)>,
    /// The topic-partition [`OffsetSet::insert`] saw last: rows come in runs of one.
    last: usize,
}

impl PartialEq for OffsetSet {
    fn eq(&self, other: &Self) -> bool {
        self.tps == other.tps
    }
}

impl Eq for OffsetSet {}

impl OffsetSet {
    /// The offsets the data files among `keys` hold, by their names; other keys are ignored.
    pub fn of_data_files<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self::of_files(keys, DATA_FILE_EXTENSION)
    }

    /// The offsets the dead-letter files among `keys` hold, by their names.
    pub fn of_dead_letter_files<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self::of_files(keys, DEAD_LETTER_EXTENSION)
    }

    fn of_files<'a>(keys: impl IntoIterator<Item = &'a str>, extension: &str) -> Self {
        let mut set = OffsetSet::default();
        for key in keys {
            let name = key.rsplit('/').next().unwrap_or(key);
            if let Some(r) = name.ends_with(extension).then(|| FileRange::parse(name)).flatten() {
                set.add_file(&r);
            }
        }
        set
    }

    fn find(&self, topic: &str, partition: i32) -> Result<usize, usize> {
        self.tps.binary_search_by(|(tp, _)| (tp.topic.as_str(), tp.partition).cmp(&(topic, partition)))
    }

    fn intervals_mut(&mut self, topic: &str, partition: i32) -> &mut Vec<(i64, i64)> {
        if !self.tps.get(self.last).is_some_and(|(tp, _)| tp.is(topic, partition)) {
            self.last = match self.find(topic, partition) {
                Ok(i) => i,
                Err(i) => {
                    self.tps.insert(i, (TopicPartition { topic: topic.to_string(), partition }, Vec::new()));
                    i
                }
            };
        }
        &mut self.tps[self.last].1
    }

    /// Adds `first..=last`, merging it with the intervals it overlaps or touches.
    pub fn add_range(&mut self, topic: &str, partition: i32, first: i64, last: i64) {
        let v = self.intervals_mut(topic, partition);
        // The intervals that overlap or touch [first, last] are v[lo..hi].
        let lo = v.partition_point(|&(_, b)| b.saturating_add(1) < first);
        let hi = v.partition_point(|&(a, _)| a <= last.saturating_add(1));
        if lo == hi {
            v.insert(lo, (first, last));
        } else {
            let merged = (v[lo].0.min(first), v[hi - 1].1.max(last));
            v.splice(lo..hi, [merged]);
        }
    }

    /// Adds the offsets a file holds.
    pub fn add_file(&mut self, r: &FileRange) {
        self.add_range(&r.topic, r.partition, r.first, r.last);
    }

    /// Adds every offset of `other`.
    pub fn extend(&mut self, other: &OffsetSet) {
        for (tp, v) in &other.tps {
            for &(a, b) in v {
                self.add_range(&tp.topic, tp.partition, a, b);
            }
        }
    }

    /// Adds `offset`; false if it was already there. Offsets mostly arrive in order, which
    /// takes the fast path.
    pub fn insert(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let v = self.intervals_mut(topic, partition);
        match v.last_mut() {
            Some(last) if offset == last.1.saturating_add(1) => {
                last.1 = offset;
                return true;
            }
            Some(last) if offset > last.1 => {
                v.push((offset, offset));
                return true;
            }
            None => {
                v.push((offset, offset));
                return true;
            }
            Some(_) => {}
        }
        let i = v.partition_point(|&(a, _)| a <= offset);
        if i > 0 && offset <= v[i - 1].1 {
            return false;
        }
        self.add_range(topic, partition, offset, offset);
        true
    }

    /// Whether `offset` of the topic-partition is in the set.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        let Ok(at) = self.find(topic, partition) else { return false };
        let v = &self.tps[at].1;
        let i = v.partition_point(|&(a, _)| a <= offset);
        i > 0 && offset <= v[i - 1].1
    }

    /// The intervals of one topic-partition, sorted.
    pub fn intervals(&self, topic: &str, partition: i32) -> &[(i64, i64)] {
        self.find(topic, partition).map(|i| self.tps[i].1.as_slice()).unwrap_or_default()
    }

    /// True when the set holds no offset.
    pub fn is_empty(&self) -> bool {
        self.tps.iter().all(|(_, v)| v.is_empty())
    }
}

impl Serialize for OffsetSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.tps.iter().filter(|(_, v)| !v.is_empty()).map(|(tp, v)| (tp.to_string(), v)))
    }
}

impl<'de> Deserialize<'de> for OffsetSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Vec<(i64, i64)>>::deserialize(d)?;
        let mut set = OffsetSet::default();
        for (key, v) in map {
            // Tributary writes no other key; one it cannot place names no offset it can use.
            let Some(tp) = TopicPartition::parse(&key) else { continue };
            for (a, b) in v {
                set.add_range(&tp.topic, tp.partition, a, b);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path: a plain set of offsets.
    fn model(set: &std::collections::BTreeSet<(String, i32, i64)>, topic: &str, partition: i32, offset: i64) -> bool {
        set.contains(&(topic.to_string(), partition, offset))
    }

    #[test]
    fn ranges_merge_and_answer() {
        let mut r = OffsetSet::default();
        r.add_range("a-b", 0, 10, 19);
        r.add_range("a-b", 0, 20, 25);
        r.add_range("a-b", 0, 40, 50);
        r.add_range("a-b", 0, 5, 12);
        assert_eq!(r.intervals("a-b", 0), [(5, 25), (40, 50)]);
        assert!(r.contains("a-b", 0, 5) && r.contains("a-b", 0, 25) && r.contains("a-b", 0, 45));
        assert!(!r.contains("a-b", 0, 26) && !r.contains("a-b", 1, 10) && !r.contains("a", 0, 10));
        let mut o = OffsetSet::default();
        o.add_range("a-b", 0, 26, 39);
        r.extend(&o);
        assert_eq!(r.intervals("a-b", 0), [(5, 50)]);
        r.add_range("a-b", 0, i64::MAX - 1, i64::MAX);
        assert!(r.contains("a-b", 0, i64::MAX) && !r.contains("a-b", 0, i64::MAX - 2));
    }

    #[test]
    fn inserts_deduplicate_in_any_order() {
        let mut s = OffsetSet::default();
        for o in [1, 2, 3, 10, 11, 5, 4, 7, 6, 8, 9] {
            assert!(s.insert("t", 0, o), "{o}");
        }
        for o in [1, 5, 11, 7] {
            assert!(!s.insert("t", 0, o), "{o}");
        }
        assert!(s.insert("t", 1, 1));
        assert_eq!(s.intervals("t", 0), [(1, 11)]);
    }

    #[test]
    fn agrees_with_a_plain_set_over_scrambled_inputs() {
        let mut rng = crate::testing::sample::Rng::new(11);
        for round in 0..200 {
            let mut set = OffsetSet::default();
            let mut plain = std::collections::BTreeSet::new();
            for _ in 0..rng.below(60) {
                let topic = ["a", "a-b", "b"][rng.below(3) as usize];
                let partition = rng.below(3) as i32;
                let first = rng.below(80) as i64;
                if rng.below(3) == 0 {
                    let last = first + rng.below(6) as i64;
                    set.add_range(topic, partition, first, last);
                    plain.extend((first..=last).map(|o| (topic.to_string(), partition, o)));
                } else {
                    let fresh = plain.insert((topic.to_string(), partition, first));
                    assert_eq!(set.insert(topic, partition, first), fresh, "round {round}");
                }
            }
            for topic in ["a", "a-b", "b", "c"] {
                for partition in 0..4 {
                    let v = set.intervals(topic, partition);
                    assert!(v.windows(2).all(|w| w[0].1 + 1 < w[1].0), "disjoint, apart, sorted: {v:?}");
                    for offset in -1..90 {
                        assert_eq!(set.contains(topic, partition, offset), model(&plain, topic, partition, offset));
                    }
                }
            }
            let stored: OffsetSet = serde_json::from_slice(&serde_json::to_vec(&set).unwrap()).unwrap();
            assert_eq!(stored, set, "round {round}: the stored form reads back");
        }
    }

    #[test]
    fn the_stored_form_is_keyed_by_topic_and_partition() {
        let mut s = OffsetSet::default();
        s.add_range("orders-v1", 3, 5, 9);
        s.add_range("orders-v1", 10, 1, 1);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"orders-v1~3":[[5,9]],"orders-v1~10":[[1,1]]}"#);
        let back: OffsetSet = serde_json::from_str(r#"{"orders-v1~10":[[1,1]],"orders-v1~3":[[5,9]],"junk":[[1,2]]}"#).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn file_names_give_their_ranges() {
        let c = OffsetSet::of_data_files([
            "tables/t/dt=2026-11-22/hr=03/part-a-b~0~00000000000000000010~00000000000000000019.parquet",
            "tables/t/dt=2026-11-22/hr=03/part-a-b~1~00000000000000000000~00000000000000000005.parquet",
            "tables/t/dt=2026-11-22/hr=03/part-a-b~0~00000000000000000030~00000000000000000039.jsonl",
            "tables/t/dt=2026-11-22/hr=03/notes.txt",
        ]);
        assert!(c.contains("a-b", 0, 10) && c.contains("a-b", 0, 19) && c.contains("a-b", 1, 0));
        assert!(!c.contains("a-b", 0, 20) && !c.contains("a-b", 0, 30) && !c.contains("a-b", 2, 10));
    }
}
