//! The newest records of the embedded log, kept in memory by the process
//! that wrote them.
//!
//! Every consumer group reads every record of its topics, and most records
//! are read a few moments after they were written, by the same process. Read
//! from the file, each costs a query, a row copied out of SQLite and its
//! headers parsed again, once per group. The tail hands out the records this
//! process committed, in `seq` order, straight from memory.
//!
//! The file stays the truth. The tail only holds a run of consecutive `seq`s
//! that this process committed; a record another process (`campusg publish`)
//! committed in between breaks the run, and the tail starts again after it.
//! A reader whose next record is not in the tail (older than it, or written
//! by another process) reads the file, as before.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use campusg_runtime::bus::Record;

/// How many records the tail keeps at most: a consumer further behind than
/// this reads the file.
pub const TAIL_RECORDS: usize = 2_048;

/// How many bytes of keys, values and headers the tail keeps at most: records
/// may be up to a megabyte each, and the tail must not be what a few of them
/// fill memory with.
pub const TAIL_BYTES: usize = 8 * 1024 * 1024;

pub struct LogTail {
    max_records: usize,
    max_bytes: usize,
    run: Mutex<Run>,
}

/// Records with consecutive `seq`s: `records[i]` has `first_seq + i`.
#[derive(Default)]
struct Run {
    first_seq: i64,
    records: VecDeque<Arc<Record>>,
    bytes: usize,
}

fn size_of(record: &Record) -> usize {
    record.key.as_ref().map_or(0, String::len)
        + record.value.len()
        + record
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

impl Run {
    fn next_seq(&self) -> i64 {
        self.first_seq + self.records.len() as i64
    }
}

/// What the tail holds after a reader's cursor.
#[derive(Debug)]
pub struct TailRead {
    /// The records on the reader's topics, in `seq` order.
    pub records: Vec<Arc<Record>>,
    /// The `seq` of the last record looked at, matching or not: the reader's
    /// next cursor.
    pub last_seq: i64,
}

impl LogTail {
    pub fn new(max_records: usize, max_bytes: usize) -> LogTail {
        LogTail {
            max_records,
            max_bytes,
            run: Mutex::default(),
        }
    }

    /// Takes `records`, just committed with the `seq`s from `first_seq` on,
    /// in order. Called on the log's connection thread, so calls come in commit
    /// order.
    pub fn append(&self, first_seq: i64, records: Vec<Record>) {
        let mut run = self.run.lock().expect("not poisoned");
        if run.records.is_empty() || run.next_seq() != first_seq {
            // Another process wrote in between (or this is the first write):
            // the run starts again here.
            run.records.clear();
            run.bytes = 0;
            run.first_seq = first_seq;
        }
        for record in records {
            run.bytes += size_of(&record);
            run.records.push_back(Arc::new(record));
        }
        while run.records.len() > self.max_records || (run.bytes > self.max_bytes && !run.records.is_empty()) {
            if let Some(oldest) = run.records.pop_front() {
                run.bytes -= size_of(&oldest);
                run.first_seq += 1;
            }
        }
    }

    /// Forgets everything: the file changed under the tail (records deleted).
    pub fn clear(&self) {
        let mut run = self.run.lock().expect("not poisoned");
        run.records.clear();
        run.bytes = 0;
    }

    /// Whether the last record the tail holds has `seq`: a reader at that
    /// cursor has read all of it.
    pub fn ends_at(&self, seq: i64) -> bool {
        let run = self.run.lock().expect("not poisoned");
        !run.records.is_empty() && run.next_seq() == seq + 1
    }

    /// Up to `max_records` records on `topics` after `cursor`, if the tail
    /// holds the record right after `cursor` (`None` if it does not: the
    /// reader reads the file).
    pub fn read_after(&self, cursor: i64, topics: &[String], max_records: usize) -> Option<TailRead> {
        let run = self.run.lock().expect("not poisoned");
        let next = cursor.checked_add(1)?;
        if next < run.first_seq || next >= run.next_seq() {
            return None;
        }
        let mut records = Vec::new();
        let mut last_seq = cursor;
        for (i, record) in run.records.iter().enumerate().skip((next - run.first_seq) as usize) {
            if records.len() >= max_records {
                break;
            }
            last_seq = run.first_seq + i as i64;
            if topics.iter().any(|topic| *topic == record.topic) {
                records.push(record.clone());
            }
        }
        Some(TailRead { records, last_seq })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rstest::rstest;

    use super::*;

    fn record(topic: &str, value: &str) -> Record {
        Record {
            topic: topic.to_string(),
            partition: 0,
            offset: 0,
            key: None,
            value: value.to_string(),
            headers: Vec::new(),
            timestamp: Utc::now(),
        }
    }

    fn values(read: &TailRead) -> Vec<&str> {
        read.records.iter().map(|r| r.value.as_str()).collect()
    }

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_reader_gets_its_topics_records_and_moves_past_the_others() {
        let tail = LogTail::new(100, TAIL_BYTES);
        tail.append(
            1,
            vec![record("a", "1"), record("b", "2"), record("a", "3"), record("b", "4")],
        );
        let read = tail.read_after(0, &topics(&["a"]), 10).unwrap();
        assert_eq!(values(&read), ["1", "3"]);
        assert_eq!(read.last_seq, 4);
    }

    #[test]
    fn a_reader_stops_at_its_batch_size_and_resumes_after_the_last_record_it_got() {
        let tail = LogTail::new(100, TAIL_BYTES);
        tail.append(
            1,
            vec![record("a", "1"), record("b", "2"), record("a", "3"), record("a", "4")],
        );
        let first = tail.read_after(0, &topics(&["a", "b"]), 2).unwrap();
        assert_eq!(values(&first), ["1", "2"]);
        assert_eq!(first.last_seq, 2);
        let second = tail.read_after(first.last_seq, &topics(&["a", "b"]), 2).unwrap();
        assert_eq!(values(&second), ["3", "4"]);
    }

    #[rstest]
    #[case::caught_up(4)]
    #[case::before_the_tail(0)]
    fn a_reader_whose_next_record_the_tail_lacks_reads_the_file(#[case] cursor: i64) {
        let tail = LogTail::new(100, TAIL_BYTES);
        tail.append(2, vec![record("a", "2"), record("a", "3"), record("a", "4")]);
        assert!(tail.read_after(cursor, &topics(&["a"]), 10).is_none());
    }

    #[test]
    fn a_record_another_process_wrote_in_between_starts_the_run_again() {
        let tail = LogTail::new(100, TAIL_BYTES);
        tail.append(1, vec![record("a", "1"), record("a", "2")]);
        // seq 3 was written by another process.
        tail.append(4, vec![record("a", "4")]);
        assert!(
            tail.read_after(1, &topics(&["a"]), 10).is_none(),
            "seq 3 is only in the file"
        );
        assert_eq!(values(&tail.read_after(3, &topics(&["a"]), 10).unwrap()), ["4"]);
    }

    #[test]
    fn the_tail_keeps_only_the_newest_records() {
        let tail = LogTail::new(2, TAIL_BYTES);
        tail.append(1, vec![record("a", "1"), record("a", "2"), record("a", "3")]);
        assert!(tail.read_after(0, &topics(&["a"]), 10).is_none(), "seq 1 was let go");
        assert_eq!(values(&tail.read_after(1, &topics(&["a"]), 10).unwrap()), ["2", "3"]);
        tail.append(4, vec![record("a", "4")]);
        assert!(tail.read_after(1, &topics(&["a"]), 10).is_none(), "seq 2 was let go");
        assert_eq!(values(&tail.read_after(2, &topics(&["a"]), 10).unwrap()), ["3", "4"]);
    }

    #[test]
    fn a_reader_knows_when_it_has_read_all_the_tail_holds() {
        let tail = LogTail::new(100, TAIL_BYTES);
        assert!(!tail.ends_at(0), "an empty tail holds nothing to have read");
        tail.append(1, vec![record("a", "1"), record("a", "2")]);
        assert!(!tail.ends_at(1));
        assert!(tail.ends_at(2));
    }

    #[test]
    fn the_tail_keeps_no_more_bytes_than_its_budget() {
        let tail = LogTail::new(100, 25);
        tail.append(1, vec![record("a", &"x".repeat(10)), record("a", &"y".repeat(10))]);
        assert!(tail.read_after(0, &topics(&["a"]), 10).is_some(), "20 bytes fit");
        tail.append(3, vec![record("a", &"z".repeat(10))]);
        assert!(tail.read_after(0, &topics(&["a"]), 10).is_none(), "seq 1 was let go");
        assert_eq!(tail.read_after(1, &topics(&["a"]), 10).unwrap().records.len(), 2);
        tail.append(4, vec![record("a", &"w".repeat(100))]);
        assert!(!tail.ends_at(3), "a record larger than the budget is not kept");
    }

    #[test]
    fn a_cleared_tail_sends_every_reader_to_the_file() {
        let tail = LogTail::new(100, TAIL_BYTES);
        tail.append(1, vec![record("a", "1")]);
        tail.clear();
        assert!(tail.read_after(0, &topics(&["a"]), 10).is_none());
    }
}
