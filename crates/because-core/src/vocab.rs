use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a-style hasher over 8-byte words: much faster than SipHash for the
/// short ID strings of interaction logs. IDs are not attacker-controlled in a
/// batch load; the server keeps its own maps.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Final avalanche so that the low bits used by the table are mixed.
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^ (z >> 33)
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Build-hasher for [`IdHasher`].
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// A map from external ID strings to dense indices `0..len`, in order of
/// first appearance, and back.
///
/// External IDs are kept as strings whatever they look like, so integer IDs of
/// any size round-trip exactly.
///
/// IDs that are canonical decimal integers (no sign, no leading zeros, at
/// most 19 digits) are indexed by their value, which is much faster to hash
/// and compare than their text; all others by their text.
#[derive(Clone, Debug, Default)]
pub struct Vocab {
    ids: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, IdBuildHasher>,
    int_index: HashMap<u64, u32, IdBuildHasher>,
}

/// The value of `s` if it is a canonical decimal integer below 10^19:
/// digits only, no leading zero (except "0" itself). Such an ID and its
/// value are interchangeable.
#[inline]
pub fn canonical_int(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

impl Vocab {
    /// An empty vocabulary.
    pub fn new() -> Vocab {
        Vocab::default()
    }

    /// A vocabulary of the given IDs in order. Duplicates keep their first index.
    pub fn from_ids<I, S>(ids: I) -> Vocab
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v = Vocab::new();
        for id in ids {
            v.intern(id.as_ref());
        }
        v
    }

    /// The index of `id`, adding it if it is new.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(v) = canonical_int(id) {
            return self.intern_int(v);
        }
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        let boxed: Box<str> = id.into();
        self.ids.push(boxed.clone());
        self.index.insert(boxed, i);
        i
    }

    /// The index of the integer ID `v` (the same as `intern(&v.to_string())`).
    pub fn intern_int(&mut self, v: u64) -> u32 {
        let next = self.ids.len() as u32;
        let ids = &mut self.ids;
        *self.int_index.entry(v).or_insert_with(|| {
            ids.push(v.to_string().into_boxed_str());
            next
        })
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        match canonical_int(id) {
            Some(v) => self.int_index.get(&v).copied(),
            None => self.index.get(id).copied(),
        }
    }

    /// The external ID of index `i`.
    ///
    /// # Panics
    /// If `i` is not below [`Vocab::len`]: indices come from this vocabulary.
    pub fn id(&self, i: u32) -> &str {
        &self.ids[i as usize]
    }

    /// Number of IDs.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no IDs.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// All IDs in index order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.ids.iter().map(|s| &**s)
    }

    /// A vocabulary of the IDs whose old index has `keep[i]`, in the same
    /// order, with the map from old to new index (`u32::MAX` for dropped).
    pub fn retain(&self, keep: &[bool]) -> (Vocab, Vec<u32>) {
        let mut v = Vocab::new();
        let mut map = vec![u32::MAX; self.len()];
        for (i, id) in self.ids.iter().enumerate() {
            if keep.get(i).copied().unwrap_or(false) {
                map[i] = v.intern(id);
            }
        }
        (v, map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn vocab_round_trips(ids in proptest::collection::vec("[a-z0-9]{0,6}|[0-9]{1,3}|0[0-9]{1,3}|[0-9]{20,30}", 0..200)) {
            let mut v = Vocab::new();
            let idx: Vec<u32> = ids.iter().map(|s| v.intern(s)).collect();
            for (s, &i) in ids.iter().zip(&idx) {
                prop_assert_eq!(v.id(i), s.as_str());
                prop_assert_eq!(v.get(s), Some(i));
            }
            let distinct: std::collections::HashSet<&String> = ids.iter().collect();
            prop_assert_eq!(v.len(), distinct.len());
            // Indices are dense and in order of first appearance.
            let mut next = 0u32;
            for &i in &idx {
                prop_assert!(i <= next);
                if i == next { next += 1; }
            }
        }
    }

    #[test]
    fn integer_ids_and_text_agree() {
        let mut v = Vocab::new();
        assert_eq!(v.intern("42"), 0);
        assert_eq!(v.intern_int(42), 0);
        assert_eq!(v.intern("042"), 1);
        assert_eq!(v.intern("0"), 2);
        assert_eq!(v.intern("99999999999999999999"), 3);
        assert_eq!(v.get("42"), Some(0));
        assert_eq!(v.get("042"), Some(1));
        assert_eq!(v.id(1), "042");
        assert_eq!(canonical_int("18446744073709551615"), None);
        assert_eq!(canonical_int("-1"), None);
        assert_eq!(canonical_int(""), None);
    }

    #[test]
    fn huge_integer_ids_are_kept_exactly() {
        let mut v = Vocab::new();
        let big = "123456789012345678901234567890";
        let i = v.intern(big);
        assert_eq!(v.id(i), big);
        assert_eq!(v.get("123456789012345678901234567891"), None);
    }

    #[test]
    fn retain_keeps_order() {
        let v = Vocab::from_ids(["a", "b", "c", "d"]);
        let (w, map) = v.retain(&[true, false, true, true]);
        assert_eq!(w.ids().collect::<Vec<_>>(), ["a", "c", "d"]);
        assert_eq!(map, [0, u32::MAX, 1, 2]);
    }
}
