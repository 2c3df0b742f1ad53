//! Replay after damage: a torn tail, flipped bytes in a record and in a
//! length, a damaged cursor: counted, and every intact record delivered.

use std::fs;
use std::path::Path;

use super::tests::{batch, open, options};
use super::*;

/// Ten records of ten metrics, closed; the one segment's path and the
/// offsets of its records.
fn ten_records(dir: &Path) -> (PathBuf, Vec<usize>) {
    let (buf, _) = open(options(dir));
    for i in 0..10 {
        buf.add(batch(i * 10, 10), None);
        buf.settle();
    }
    drop(buf);
    let ids = frame::list_segments(dir).unwrap();
    assert_eq!(ids.len(), 1);
    let path = frame::segment_path(dir, ids[0]);
    let data = fs::read(&path).unwrap();
    let mut offsets = Vec::new();
    let mut at = 0;
    while let frame::Frame::Valid { len, .. } = frame::check_frame(&data[at..]) {
        offsets.push(at);
        at += len;
    }
    assert_eq!((offsets.len(), at), (10, data.len()));
    (path, offsets)
}

fn expected_without(records: &[i64]) -> Vec<i64> {
    (0..100).filter(|s| !records.contains(&(s / 10))).collect()
}

#[test]
fn a_torn_tail_is_counted_and_every_whole_record_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = ten_records(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(offsets[9] as u64 + 20)
        .unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(
        (
            recovery.records,
            recovery.metrics,
            recovery.corrupt_records,
            recovery.corrupt_bytes
        ),
        (9, 90, 1, 20)
    );
    assert!(len > offsets[9] as u64 + 20);
    assert_eq!(buf.stats().corrupt_records, 1);
    assert_eq!(buf.drain(1000), expected_without(&[9]));
}

#[test]
fn a_flipped_byte_in_the_middle_costs_only_its_record_and_is_cut_out() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = ten_records(dir.path());
    let mut data = fs::read(&path).unwrap();
    data[offsets[4] + 40] ^= 0x10;
    fs::write(&path, &data).unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!((recovery.records, recovery.corrupt_records), (9, 1));
    assert_eq!(recovery.corrupt_bytes as usize, offsets[5] - offsets[4]);
    let (b, t) = buf.take(25).unwrap();
    buf.commit(t);
    assert_eq!(tests::seqs(&b), (0..25).collect::<Vec<_>>());
    drop(buf);
    // The damaged record was cut out on the first open: nothing to count now.
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!((recovery.corrupt_records, recovery.metrics), (0, 65));
    assert_eq!(buf.drain(1000), expected_without(&[0, 1, 4]).split_off(5));
}

#[test]
fn a_flipped_length_resynchronises_on_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = ten_records(dir.path());
    let mut data = fs::read(&path).unwrap();
    data[offsets[2] + 2] ^= 0x80; // the length of record 2 now runs past the end
    data[offsets[6] + 1] ^= 0x01; // the length of record 6 is off by 256
    fs::write(&path, &data).unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!((recovery.records, recovery.corrupt_records), (8, 2));
    assert_eq!(buf.drain(1000), expected_without(&[2, 6]));
}

#[test]
fn a_damaged_cursor_replays_everything_and_garbage_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _) = ten_records(dir.path());
    let (buf, _) = open(options(dir.path()));
    let (_, t) = buf.take(50).unwrap();
    buf.commit(t);
    drop(buf);
    fs::write(dir.path().join(cursor::CURSOR_FILE), b"garbage").unwrap();
    fs::write(dir.path().join("notes.txt"), b"not a segment").unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(recovery.metrics, 100, "at least once: all of it again");
    assert_eq!(buf.drain(1000), (0..100).collect::<Vec<_>>());
}

#[test]
fn a_segment_of_garbage_is_counted_whole_and_the_others_still_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _) = ten_records(dir.path());
    fs::write(frame::segment_path(dir.path(), 2), vec![0xa5; 5000]).unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(
        (recovery.corrupt_records, recovery.corrupt_bytes),
        (1, 5000)
    );
    assert_eq!(buf.drain(1000), (0..100).collect::<Vec<_>>());
    assert!(!frame::segment_path(dir.path(), 2).exists());
}

#[test]
fn random_damage_never_panics_and_every_untouched_record_is_delivered() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = ten_records(dir.path());
    let pristine = fs::read(&path).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    for round in 0..150 {
        let mut data = pristine.clone();
        let mut touched = [false; 10];
        let record_of = |at: usize| offsets.iter().rposition(|&o| o <= at).unwrap();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..data.len());
            data[at] ^= rng.random_range(1..=255u8);
            touched[record_of(at)] = true;
        }
        let truncated = rng.random_bool(0.3);
        if truncated {
            let cut = rng.random_range(0..data.len());
            data.truncate(cut);
            (record_of(cut)..10).for_each(|r| touched[r] = true);
        }
        let case = dir.path().join(format!("round{round}"));
        fs::create_dir(&case).unwrap();
        fs::write(frame::segment_path(&case, 1), &data).unwrap();
        let (buf, recovery) = open(options(&case));
        let got = buf.drain(1000);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "round {round}: in order"
        );
        for r in (0..10).filter(|&r| !touched[r]) {
            let want: Vec<i64> = (r as i64 * 10..r as i64 * 10 + 10).collect();
            assert!(
                want.iter().all(|s| got.contains(s)),
                "round {round}: record {r} untouched but lost ({recovery:?})"
            );
        }
        let lost = touched.iter().filter(|&&t| t).count() as u64;
        assert!(
            recovery.corrupt_records <= lost,
            "round {round}: {recovery:?}"
        );
        assert!(truncated || recovery.corrupt_records >= 1, "round {round}");
    }
}
