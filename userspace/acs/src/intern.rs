//! String interning for what a million devices repeat: OUIs, product classes, software
//! versions, parameter names, event codes. A [`Sym`] is 4 bytes; the text lives once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// An interned string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sym(pub u32);

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    names: Vec<Arc<str>>,
}

/// The table. Symbol 0 is the empty string.
#[derive(Debug)]
pub struct Interner {
    inner: RwLock<Inner>,
}

impl Default for Interner {
    fn default() -> Self {
        let i = Interner {
            inner: RwLock::default(),
        };
        i.intern("");
        i
    }
}

impl Interner {
    pub fn intern(&self, s: &str) -> Sym {
        if let Some(&n) = self.read().map.get(s) {
            return Sym(n);
        }
        let mut w = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&n) = w.map.get(s) {
            return Sym(n);
        }
        let n = w.names.len() as u32;
        let a: Arc<str> = Arc::from(s);
        w.names.push(Arc::clone(&a));
        w.map.insert(a, n);
        Sym(n)
    }

    /// The symbol of `s` if it was interned before.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.read().map.get(s).map(|&n| Sym(n))
    }

    pub fn resolve(&self, s: Sym) -> Arc<str> {
        // Invariant: every Sym came from this table's `intern`, so the index exists.
        Arc::clone(&self.read().names[s.0 as usize])
    }

    pub fn len(&self) -> usize {
        self.read().names.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the table half-written (push then
        // insert, both infallible short of OOM), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
}
