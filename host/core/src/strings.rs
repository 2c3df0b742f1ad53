//! The per-batch string table: every name, tag key and value, field key and
//! string value in a batch is a [`Sym`], an index into this table.

use std::collections::HashMap;

/// Index into a batch's [`StringTable`].
pub type Sym = u32;

/// Strings of one batch. Interning is deduplicated once an index exists; the
/// index is built lazily, so a table received from elsewhere costs nothing
/// until someone interns into it.
#[derive(Clone, Debug, Default)]
pub struct StringTable {
    strings: Vec<String>,
    index: Option<HashMap<String, Sym>>,
}

impl StringTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wrap strings received as they are (duplicates allowed).
    pub fn from_vec(strings: Vec<String>) -> Self {
        Self {
            strings,
            index: None,
        }
    }

    /// Give the strings back, for handing the batch over.
    pub fn into_vec(self) -> Vec<String> {
        self.strings
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the table holds no string.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// The string behind a symbol. Panics when `sym` is out of range, which a
    /// validated batch rules out.
    pub fn get(&self, sym: Sym) -> &str {
        &self.strings[sym as usize]
    }

    /// All strings, in symbol order.
    pub fn as_slice(&self) -> &[String] {
        &self.strings
    }

    /// The symbol of `s`, if the table holds it; never adds.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        match &self.index {
            Some(index) => index.get(s).copied(),
            None => self.strings.iter().position(|x| x == s).map(|i| i as Sym),
        }
    }

    /// The symbol of `s`, adding it when missing.
    pub fn intern(&mut self, s: &str) -> Sym {
        let strings = &self.strings;
        let index = self.index.get_or_insert_with(|| {
            let mut index = HashMap::with_capacity(strings.len().max(16));
            for (i, s) in strings.iter().enumerate() {
                index.entry(s.clone()).or_insert(i as Sym);
            }
            index
        });
        if let Some(&sym) = index.get(s) {
            return sym;
        }
        let sym = self.strings.len() as Sym;
        self.strings.push(s.to_owned());
        index.insert(s.to_owned(), sym);
        sym
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn received_tables_with_duplicates_intern_to_the_first() {
        let mut t = StringTable::from_vec(vec!["x".into(), "y".into(), "x".into()]);
        assert_eq!(t.lookup("x"), Some(0));
        assert_eq!(t.intern("x"), 0);
        assert_eq!(t.intern("z"), 3);
        assert_eq!(t.lookup("z"), Some(3));
    }
}
