//! The check behind the `batch_codec` fuzz target, shared with the corpus
//! test (`host/core/tests/fuzz_corpus.rs`): arbitrary bytes never make the
//! batch decoder panic, and whatever decodes encodes back to the very same
//! bytes and decodes again to the same columns.

use graft_core::batch::codec::{decode, encode};

/// Decode `data`; when it is a batch, encode it and decode that again.
pub fn check(data: &[u8]) {
    let Ok(batch) = decode(data) else {
        return;
    };
    let mut again = Vec::new();
    encode(&batch, &mut again);
    assert_eq!(again, data, "the encoding is canonical");
    let back = decode(&again).expect("an encoded batch decodes");
    assert_eq!(back.into_parts(), batch.into_parts());
}
