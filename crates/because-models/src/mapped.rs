//! Model tensors that live in the model file: [`Floats`], a read-only
//! `f32` buffer that is either owned or a view of a memory-mapped
//! `model.safetensors`.
//!
//! Opening a large model (EASE on 27k items is a 2.9 GB matrix) then costs
//! what checking it costs, not a copy: pages are read from the file when a
//! score first touches them, so resident memory grows with what is used,
//! and processes serving the same folder share one copy in the page cache.
//!
//! This is the only module of the crate with `unsafe` code: mapping a file
//! is unsafe because the mapping would change if another process wrote the
//! file in place. Model folders are never written in place: [`crate::persist::save`]
//! writes new files under temporary names and renames them over the old
//! ones, so a mapped file keeps its bytes until the last view is dropped.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A memory-mapped file, shared by the views made of it.
pub(crate) struct Map(memmap2::Mmap);

impl Map {
    /// Maps `file` read-only.
    pub(crate) fn new(file: &std::fs::File) -> std::io::Result<Map> {
        // SAFETY: the file is a model folder's tensors, which this crate
        // never modifies in place (saves write a new file and rename it);
        // the mapping is read-only and lives as long as its views.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Map(map))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Read-only `f32` values: owned, or a view of a mapped model file.
/// Dereferences to `[f32]`.
#[derive(Clone)]
pub struct Floats(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Vec<f32>),
    Mapped {
        map: Arc<Map>,
        start: usize,
        len: usize,
    },
}

impl Floats {
    /// A view of `len` values at byte `start` of `map`, or `None` when the
    /// bytes are not aligned for `f32`, fall outside the map, or are not
    /// in this machine's byte order (little-endian).
    pub(crate) fn mapped(map: &Arc<Map>, start: usize, len: usize) -> Option<Floats> {
        let end = start.checked_add(len.checked_mul(4)?)?;
        if cfg!(target_endian = "big") || end > map.len() {
            return None;
        }
        bytemuck::try_cast_slice::<u8, f32>(&map.0[start..end]).ok()?;
        Some(Floats(Repr::Mapped {
            map: Arc::clone(map),
            start,
            len,
        }))
    }

    /// The values to change in place: a view is copied into memory first.
    pub(crate) fn to_mut(&mut self) -> &mut Vec<f32> {
        if let Repr::Mapped { .. } = self.0 {
            self.0 = Repr::Owned(self.to_vec());
        }
        match &mut self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { .. } => unreachable!("copied above"),
        }
    }

    /// Whether the values are a view of a mapped file (rather than owned).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }
}

impl Deref for Floats {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { map, start, len } => {
                // Checked to be aligned and in range when the view was made.
                bytemuck::cast_slice(&map.0[*start..*start + 4 * *len])
            }
        }
    }
}

impl From<Vec<f32>> for Floats {
    fn from(v: Vec<f32>) -> Floats {
        Floats(Repr::Owned(v))
    }
}

impl fmt::Debug for Floats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Floats")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl PartialEq for Floats {
    fn eq(&self, other: &Floats) -> bool {
        **self == **other
    }
}
