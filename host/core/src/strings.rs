//! The per-batch string table: every name, tag key and value, field key and
//! string value in a batch is a [`Sym`], an index into this table.
//!
//! The strings live end to end in one `String`, with the end offset of each;
//! this is also how they cross into WASM plugins, so a batch with a thousand
//! distinct strings costs one allocation, not a thousand. An index for
//! interning is built lazily, the first time something is interned.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Index into a batch's [`StringTable`].
pub type Sym = u32;

/// Why a received string table is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StringTableError {
    #[error(
        "`string-ends[{index}]` = {end} is before the previous end or past the {len} bytes of `string-data`"
    )]
    End { index: usize, end: u32, len: usize },
    #[error("`string-ends[{index}]` = {end} falls inside a UTF-8 character")]
    NotCharBoundary { index: usize, end: u32 },
    #[error("`string-ends` ends at {last} but `string-data` has {len} bytes")]
    Trailing { last: usize, len: usize },
}

/// Strings of one batch.
#[derive(Debug, Default)]
pub struct StringTable {
    data: String,
    ends: Vec<u32>,
    index: Option<Index>,
}

#[derive(Debug, Default)]
struct Index {
    hasher: DefaultHashBuilder,
    table: HashTable<Sym>,
}

impl Clone for StringTable {
    /// The interning index is not cloned; the copy rebuilds it if it interns.
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            ends: self.ends.clone(),
            index: None,
        }
    }
}

impl StringTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table from concatenated strings and their end offsets, checked.
    pub fn from_parts(data: String, ends: Vec<u32>) -> Result<Self, StringTableError> {
        let len = data.len();
        let mut prev = 0u32;
        for (index, &end) in ends.iter().enumerate() {
            if end < prev || end as usize > len {
                return Err(StringTableError::End { index, end, len });
            }
            if !data.is_char_boundary(end as usize) {
                return Err(StringTableError::NotCharBoundary { index, end });
            }
            prev = end;
        }
        if prev as usize != len {
            return Err(StringTableError::Trailing {
                last: prev as usize,
                len,
            });
        }
        Ok(Self {
            data,
            ends,
            index: None,
        })
    }

    /// Give the concatenated strings and their end offsets back.
    pub fn into_parts(self) -> (String, Vec<u32>) {
        (self.data, self.ends)
    }

    /// The concatenated strings and their end offsets, borrowed (for the
    /// batch codec's bulk copies).
    pub(crate) fn raw_parts(&self) -> (&str, &[u32]) {
        (&self.data, &self.ends)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the table holds no string.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The string behind a symbol. Panics when `sym` is out of range, which a
    /// validated batch rules out.
    pub fn get(&self, sym: Sym) -> &str {
        let i = sym as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// Every string, in symbol order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len() as Sym).map(move |s| self.get(s))
    }

    /// The symbol of `s`, if the table holds it; never adds.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        match &self.index {
            Some(index) => {
                let hash = index.hasher.hash_one(s);
                index.table.find(hash, |&sym| self.get(sym) == s).copied()
            }
            None => self.iter().position(|x| x == s).map(|i| i as Sym),
        }
    }

    /// The symbol of `s`, adding it when missing.
    pub fn intern(&mut self, s: &str) -> Sym {
        if self.index.is_none() {
            self.build_index();
        }
        let Self { data, ends, index } = self;
        let index = index.as_mut().expect("index built");
        let get = |sym: Sym| -> &str {
            let i = sym as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            &data[start..ends[i] as usize]
        };
        let hash = index.hasher.hash_one(s);
        if let Some(&sym) = index.table.find(hash, |&sym| get(sym) == s) {
            return sym;
        }
        let sym = ends.len() as Sym;
        data.push_str(s);
        ends.push(data.len() as u32);
        let hasher = &index.hasher;
        let (data, ends) = (&*data, &*ends);
        index.table.insert_unique(hash, sym, |&x| {
            let i = x as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            hasher.hash_one(&data[start..ends[i] as usize])
        });
        sym
    }

    fn build_index(&mut self) {
        let mut index = Index {
            hasher: DefaultHashBuilder::default(),
            table: HashTable::with_capacity(self.len().max(16)),
        };
        for sym in 0..self.len() as Sym {
            let s = self.get(sym);
            let hash = index.hasher.hash_one(s);
            if index.table.find(hash, |&x| self.get(x) == s).is_none() {
                let hasher = &index.hasher;
                index
                    .table
                    .insert_unique(hash, sym, |&x| hasher.hash_one(self.get(x)));
            }
        }
        self.index = Some(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(strings: &[&str]) -> StringTable {
        let mut data = String::new();
        let mut ends = Vec::new();
        for s in strings {
            data.push_str(s);
            ends.push(data.len() as u32);
        }
        StringTable::from_parts(data, ends).unwrap()
    }

    #[test]
    fn intern_deduplicates_and_lookup_never_adds() {
        let mut t = StringTable::new();
        let a = t.intern("a");
        let b = t.intern("b");
        assert_ne!(a, b);
        assert_eq!(t.intern("a"), a);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup("c"), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(b), "b");
        let e = t.intern("");
        assert_eq!(t.get(e), "");
        assert_eq!(t.lookup(""), Some(e));
    }

    #[test]
    fn received_tables_with_duplicates_intern_to_the_first() {
        let mut t = table(&["x", "y", "x"]);
        assert_eq!(t.lookup("x"), Some(0));
        assert_eq!(t.intern("x"), 0);
        assert_eq!(t.intern("z"), 3);
        assert_eq!(t.lookup("z"), Some(3));
        assert_eq!(t.iter().collect::<Vec<_>>(), ["x", "y", "x", "z"]);
    }

    #[test]
    fn many_strings_intern_consistently() {
        let mut t = StringTable::new();
        let syms: Vec<Sym> = (0..5000).map(|i| t.intern(&format!("s{i}"))).collect();
        for (i, &s) in syms.iter().enumerate() {
            assert_eq!(t.get(s), format!("s{i}"));
            assert_eq!(t.intern(&format!("s{i}")), s);
        }
        let copy = t.clone();
        assert_eq!(copy.lookup("s4999"), Some(4999));
    }

    #[test]
    fn broken_parts_are_rejected() {
        assert!(matches!(
            StringTable::from_parts("abc".into(), vec![2, 1]),
            Err(StringTableError::End { index: 1, .. })
        ));
        assert!(matches!(
            StringTable::from_parts("abc".into(), vec![9]),
            Err(StringTableError::End { index: 0, .. })
        ));
        assert!(matches!(
            StringTable::from_parts("ü".into(), vec![1, 2]),
            Err(StringTableError::NotCharBoundary { index: 0, .. })
        ));
        assert!(matches!(
            StringTable::from_parts("abc".into(), vec![1]),
            Err(StringTableError::Trailing { .. })
        ));
        assert!(StringTable::from_parts(String::new(), vec![]).is_ok());
    }
}
