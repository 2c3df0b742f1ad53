//! The pickle machine's state: the frame reader, the stack of values
//! with their depth and charged size, marks and memo, and every operation
//! that charges [`PickleLimits`] before it builds anything.

use std::collections::HashMap;

use super::{PickleError, PickleLimits, Value, err};

/// What one value costs besides its text: about the size of a [`Value`].
pub(super) const NODE: usize = std::mem::size_of::<Value>();

/// A value on the machine's stack or in its memo, with its nesting depth
/// (0 for a scalar) and its size in bytes as charged.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub v: Value,
    pub depth: usize,
    pub size: usize,
}

impl Item {
    pub fn scalar(v: Value) -> Self {
        let text = match &v {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            _ => 0,
        };
        Self {
            v,
            depth: 0,
            size: NODE + text,
        }
    }
}

/// The frame's bytes, read front to back.
pub(super) struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return err("truncated pickle");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    pub fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(n) = memchr::memchr(b'\n', rest) else {
            return err("truncated pickle (no newline)");
        };
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).or_else(|_| err("text opcode argument is not UTF-8"))
    }

    pub fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    /// A declared length, refused unless that many bytes follow.
    pub fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let l = self.le(n)?;
        usize::try_from(l)
            .ok()
            .filter(|&l| l <= self.data.len() - self.pos)
            .map_or_else(|| err("length runs past the end of the frame"), Ok)
    }
}

/// The machine's state.
pub(super) struct Machine {
    pub limits: PickleLimits,
    pub stack: Vec<Item>,
    pub marks: Vec<usize>,
    pub memo: HashMap<usize, Item>,
    /// Bytes charged so far.
    pub spent: usize,
}

impl Machine {
    pub fn charge(&mut self, n: usize) -> Result<(), PickleError> {
        self.spent = self.spent.saturating_add(n);
        if self.spent > self.limits.max_decoded_size {
            return Err(PickleError::DecodedSize(self.limits.max_decoded_size));
        }
        Ok(())
    }

    pub fn push_scalar(&mut self, v: Value) -> Result<(), PickleError> {
        let item = Item::scalar(v);
        self.charge(item.size)?;
        self.stack.push(item);
        Ok(())
    }

    /// A copy of the top of the stack, charged in full: Python's `DUP`
    /// and memo share one object, here every use is paid for.
    pub fn copy_top(&mut self) -> Result<Item, PickleError> {
        let size = self.stack.last().map(|i| i.size);
        self.charge(size.map_or_else(|| err("stack underflow"), Ok)?)?;
        self.stack
            .last()
            .cloned()
            .map_or_else(|| err("stack underflow"), Ok)
    }

    pub fn pop(&mut self) -> Result<Item, PickleError> {
        self.stack.pop().map_or_else(|| err("stack underflow"), Ok)
    }

    pub fn pop_mark(&mut self) -> Result<Vec<Item>, PickleError> {
        let m = self.marks.pop().map_or_else(|| err("no mark"), Ok)?;
        if m > self.stack.len() {
            return err("mark past the stack");
        }
        Ok(self.stack.split_off(m))
    }

    /// Wrap `items` into a list or tuple and push it.
    pub fn container(&mut self, items: Vec<Item>, list: bool) -> Result<(), PickleError> {
        let depth = 1 + items.iter().map(|i| i.depth).max().unwrap_or(0);
        if depth > self.limits.max_depth {
            return Err(PickleError::Depth(self.limits.max_depth));
        }
        self.charge(NODE)?;
        let size = NODE + items.iter().map(|i| i.size).sum::<usize>();
        let values = items.into_iter().map(|i| i.v).collect();
        let v = if list {
            Value::List(values)
        } else {
            Value::Tuple(values)
        };
        self.stack.push(Item { v, depth, size });
        Ok(())
    }

    /// Append `items` to the list on top of the stack.
    pub fn append(&mut self, items: Vec<Item>) -> Result<(), PickleError> {
        let max_depth = self.limits.max_depth;
        let Some(Item {
            v: Value::List(list),
            depth,
            size,
        }) = self.stack.last_mut()
        else {
            return err("APPEND to something that is not a list");
        };
        for i in items {
            if i.depth + 1 > max_depth {
                return Err(PickleError::Depth(max_depth));
            }
            *depth = (*depth).max(i.depth + 1);
            *size += i.size;
            list.push(i.v);
        }
        Ok(())
    }

    /// Memo `PUT`: store a copy of the top of the stack.
    pub fn put(&mut self, idx: usize) -> Result<(), PickleError> {
        if !self.memo.contains_key(&idx) && self.memo.len() >= self.limits.max_memo_entries {
            return Err(PickleError::Memo(self.limits.max_memo_entries));
        }
        let item = self.copy_top()?;
        self.memo.insert(idx, item);
        Ok(())
    }

    /// Memo `GET`: push a copy of an entry.
    pub fn get(&mut self, idx: usize) -> Result<(), PickleError> {
        let size = self.memo.get(&idx).map(|i| i.size);
        self.charge(size.map_or_else(|| err("GET of an unknown memo entry"), Ok)?)?;
        if let Some(item) = self.memo.get(&idx).cloned() {
            self.stack.push(item);
        }
        Ok(())
    }
}
