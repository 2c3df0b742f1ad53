//! The decoder against Python's own frames, code, and frames built to
//! exhaust memory or the stack.

use super::*;

#[test]
fn go_carbon_protocol_0_vector() {
    let v = decode(b"(lp0\n(S'param1'\np1\n(I1423931224\nF60.2\ntp2\ntp3\na.").unwrap();
    assert_eq!(
        v,
        Value::List(vec![Value::Tuple(vec![
            Value::Str("param1".into()),
            Value::Tuple(vec![Value::Int(1423931224), Value::Float(60.2)])
        ])])
    );
}

#[test]
fn statsd_protocol_0_with_string_values() {
    let v = decode(b"(l(S'a.b.c'\n(L1234L\nS'5678'\ntta.").unwrap();
    let Value::List(items) = v else { panic!() };
    let Value::Tuple(t) = &items[0] else { panic!() };
    let Value::Tuple(p) = &t[1] else { panic!() };
    assert_eq!(as_f64(&p[1]), Some(5678.0));
}

#[test]
fn encoder_output_decodes() {
    let mut out = Vec::new();
    encode(
        &[("a.b", 1_700_000_000, 1.5), ("c", 5_000_000_000, -2.0)],
        &mut out,
    );
    let v = decode(&out).unwrap();
    assert_eq!(
        v,
        Value::List(vec![
            Value::Tuple(vec![
                Value::Str("a.b".into()),
                Value::Tuple(vec![Value::Int(1_700_000_000), Value::Float(1.5)])
            ]),
            Value::Tuple(vec![
                Value::Str("c".into()),
                Value::Tuple(vec![Value::Int(5_000_000_000), Value::Float(-2.0)])
            ]),
        ])
    );
}

#[test]
fn code_is_refused() {
    // pickle.dumps of an object whose __reduce__ returns (os.system, ("id",)), protocol 2.
    let evil = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    let e = decode(evil).unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(
        decode(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.")
            .is_err()
    );
    assert!(decode(b"}.").is_err());
    assert!(decode(b"(l").is_err());
    assert!(decode(b"\x80\x02X\xff\xff\xff\x7f").is_err());
}

/// `n` rounds of: fetch memo 0 twice, make a list of the two, store it as
/// memo 0 — each round doubles what memo 0 holds.
fn memo_doubling(n: usize) -> Vec<u8> {
    let mut f = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..n {
        f.extend_from_slice(&[b'0', b'(', b'h', 0, b'h', 0, b'l', b'q', 0]);
    }
    f.push(b'.');
    f
}

#[test]
fn memo_doubling_is_refused_at_the_size_limit() {
    let frame = memo_doubling(100);
    assert!(frame.len() < 1000);
    let limits = PickleLimits::default();
    assert_eq!(
        decode_with(&frame, &limits),
        Err(PickleError::DecodedSize(limits.max_decoded_size))
    );
    // A few rounds are a legal (if odd) pickle.
    assert!(decode(&memo_doubling(3)).is_ok());
}

#[test]
fn dup_doubling_is_refused_at_the_size_limit() {
    // A list, then DUP + APPEND over and over: the list takes in a copy
    // of itself each time.
    let mut frame = vec![0x80, 2, b']'];
    for _ in 0..200 {
        frame.extend_from_slice(b"2a");
    }
    frame.push(b'.');
    let e = decode(&frame).unwrap_err();
    assert!(
        matches!(e, PickleError::DecodedSize(_) | PickleError::Depth(_)),
        "{e}"
    );
    // Plain repeated DUP of a long string.
    let mut frame = vec![0x80, 2, b'X'];
    frame.extend_from_slice(&(1u32 << 16).to_le_bytes());
    frame.extend(std::iter::repeat_n(b'x', 1 << 16));
    frame.extend(std::iter::repeat_n(b'2', 1000));
    frame.push(b'.');
    assert_eq!(
        decode(&frame),
        Err(PickleError::DecodedSize(
            PickleLimits::default().max_decoded_size
        ))
    );
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    for n in [33, 40_000, 100_000] {
        // MARKs then LISTs, and empty lists appended into each other.
        let mut marks = vec![b'('; n];
        marks.extend(std::iter::repeat_n(b'l', n));
        marks.push(b'.');
        assert_eq!(decode(&marks), Err(PickleError::Depth(32)), "{n}");
        let mut appends = vec![b']'; n];
        appends.extend(std::iter::repeat_n(b'a', n - 1));
        appends.push(b'.');
        assert_eq!(decode(&appends), Err(PickleError::Depth(32)), "{n}");
        let mut tuples = vec![b')'];
        tuples.extend(std::iter::repeat_n(0x85, n));
        tuples.push(b'.');
        assert_eq!(decode(&tuples), Err(PickleError::Depth(32)), "{n}");
    }
    // Exactly the maximum is fine.
    let mut ok = vec![b'('; 32];
    ok.extend(std::iter::repeat_n(b'l', 32));
    ok.push(b'.');
    assert!(decode(&ok).is_ok());
}

#[test]
fn huge_declared_lengths_are_refused_before_allocating() {
    for frame in [
        &b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x10abc"[..], // BINBYTES8 2^60
        b"\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x10abc",      // BINUNICODE8 2^60
        b"\x80\x02X\xff\xff\xff\xffabc",                         // BINUNICODE 4 GiB
        b"\x80\x02\x8b\xff\xff\xff\x7fabc",                      // LONG4
        b"\x80\x02T\xff\xff\xff\x7f",                            // BINSTRING
    ] {
        assert!(
            matches!(decode(frame), Err(PickleError::Invalid(_))),
            "{frame:?}"
        );
    }
}

#[test]
fn memo_entries_are_bounded_and_sparse_indices_cost_nothing() {
    // LONG_BINPUT at index 2^32-1: one entry, not four billion.
    let frame = b"\x80\x02K\x01r\xff\xff\xff\xff.";
    assert_eq!(decode(frame), Ok(Value::Int(1)));
    let limits = PickleLimits {
        max_memo_entries: 3,
        ..PickleLimits::default()
    };
    let mut frame = vec![0x80, 2, b'K', 1];
    for i in 0..4 {
        frame.extend_from_slice(&[b'q', i]);
    }
    frame.push(b'.');
    assert_eq!(decode_with(&frame, &limits), Err(PickleError::Memo(3)));
    frame.drain(frame.len() - 3..frame.len() - 1);
    assert_eq!(decode_with(&frame, &limits), Ok(Value::Int(1)));
}
