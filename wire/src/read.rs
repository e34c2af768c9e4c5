//! The table-driven reader: JSON text straight into the wire types, with one
//! decoder for every struct. `#[derive(Read)]` describes a struct as a table
//! of its fields (wire name, offset, and the reader, drop and default of the
//! field's type); [`read_fields`] fills the struct in place from an object.
//! So the code in the wasm grows with the number of field *types* (a dozen),
//! not with the number of fields (a hundred and more), as serde's derived
//! readers do.
//!
//! It reads what serde's derived readers read from the same text, through
//! the same attributes: unknown members skipped, a member given twice an
//! error, a missing `Option` field `None`, a missing field with
//! `#[serde(default)]` its default, any other missing field an error.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::json::{Error, Reader, Result};

/// A type read from JSON text by this crate's reader.
///
/// # Safety
/// The safe readers ([`read`], `Vec<T>`'s) take a value written by
/// [`Read::read_to`] as whole when it returns `Ok`: an implementation that
/// overrides it writes a whole `Self` at the place given when it succeeds,
/// and leaves nothing there that needs dropping when it fails. One that
/// keeps the default (most) has nothing to uphold.
pub unsafe trait Read: Sized {
    /// Reads one value.
    fn read(r: &mut Reader<'_>) -> Result<Self>;

    /// The value of a struct field of this type that the object lacks, or
    /// `None` when such a field is required. An `Option` field is `None`
    /// when missing, as with serde.
    fn missing() -> Option<Self> {
        None
    }

    /// Reads one value into `at`: by default [`Read::read`]'s value moved
    /// there; a derived struct reads each member straight into its field
    /// (no struct-sized moves, and the same code for every struct).
    ///
    /// # Safety
    /// `at` is valid for writes and aligned for a `Self`, and holds no
    /// value that needs dropping.
    unsafe fn read_to(r: &mut Reader<'_>, at: *mut u8) -> Result<()> {
        let value = Self::read(r)?;
        // SAFETY: the caller's promise.
        unsafe { at.cast::<Self>().write(value) };
        Ok(())
    }
}

/// Reads one `T` from JSON text; only whitespace may follow it.
pub fn read<T: Read>(text: &str) -> Result<T> {
    let mut out = MaybeUninit::<T>::uninit();
    // SAFETY: `out` is a `T`'s place holding nothing, and `T::read_to` and
    // `drop_at` are `T`'s own; `read_into` succeeds only with a `T` there
    // (the trait's promise for `read_to`).
    unsafe {
        read_into(text, out.as_mut_ptr().cast(), T::read_to, drop_at::<T>)?;
        Ok(out.assume_init())
    }
}

/// [`read`]'s work, the same code for every type (its part for each type
/// is only the value's move out): the value read into `at` by `read`, then
/// the rest of the text checked, dropping the value with `drop` if more
/// than whitespace follows.
///
/// # Safety
/// As [`Read::read_to`]; `read` and `drop` are those of one type, `read`
/// keeping the trait's promise.
#[inline(never)]
unsafe fn read_into(
    text: &str,
    at: *mut u8,
    read: unsafe fn(&mut Reader<'_>, *mut u8) -> Result<()>,
    drop: unsafe fn(*mut u8),
) -> Result<()> {
    let mut reader = Reader::new(text);
    // SAFETY: the caller's promise.
    unsafe { read(&mut reader, at)? };
    reader.end().inspect_err(|_| {
        // SAFETY: written just above, and given up now.
        unsafe { drop(at) }
    })
}

/// Reads one value from JSON text with `read`; only whitespace may follow.
pub fn read_with<'de, T>(
    text: &'de str,
    read: impl FnOnce(&mut Reader<'de>) -> Result<T>,
) -> Result<T> {
    let mut reader = Reader::new(text);
    let value = read(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// One field of a struct, as `#[derive(Read)]` describes it.
pub struct Field {
    /// The member's name in the JSON object.
    pub name: &'static str,
    /// The field's offset in the struct.
    pub offset: usize,
    /// Reads the field's type and writes it at the place given.
    pub read: unsafe fn(&mut Reader<'_>, *mut u8) -> Result<()>,
    /// Drops a value of the field's type in place.
    pub drop: unsafe fn(*mut u8),
    /// Writes the value of a missing field at the place given; whether
    /// there is one (the field is required when not).
    pub missing: unsafe fn(*mut u8) -> bool,
}

/// Drops the `T` at `at`.
///
/// # Safety
/// `at` holds a `T`, which is not used again.
pub unsafe fn drop_at<T>(at: *mut u8) {
    // SAFETY: the caller's promise.
    unsafe { at.cast::<T>().drop_in_place() }
}

/// Writes `T::missing()` at `at`, if there is one: whether it did.
///
/// # Safety
/// As [`Read::read_to`].
pub unsafe fn missing_at<T: Read>(at: *mut u8) -> bool {
    let Some(value) = T::missing() else {
        return false;
    };
    // SAFETY: the caller's promise.
    unsafe { at.cast::<T>().write(value) };
    true
}

/// Writes `T::default()` at `at` (`#[serde(default)]`): always.
///
/// # Safety
/// As [`Read::read_to`].
pub unsafe fn default_at<T: Default>(at: *mut u8) -> bool {
    // SAFETY: the caller's promise.
    unsafe { at.cast::<T>().write(T::default()) };
    true
}

/// Reads a `T` through its [`Read::read_to`] (a derived struct's `read`,
/// whose `read_to` is [`read_fields`]).
pub fn read_struct<T: Read>(r: &mut Reader<'_>) -> Result<T> {
    let mut out = MaybeUninit::<T>::uninit();
    // SAFETY: `out` is a `T`'s place holding nothing; the trait's promise
    // makes it a whole `T` when `read_to` succeeds.
    unsafe {
        T::read_to(r, out.as_mut_ptr().cast())?;
        Ok(out.assume_init())
    }
}

/// Reads a struct from an object into `out`, field by field as `fields`
/// describes them, the same code for every struct: each member read into
/// its field's place, then each field still unwritten given its default;
/// on any error, the fields already written are dropped (and `out` holds
/// nothing that needs dropping).
///
/// # Safety
/// `out` is valid for writes and aligned for the struct, and holds no value
/// that needs dropping. `fields` describes every field of the struct once
/// (at most 64 of them), each with its own offset and the `read`, `drop`
/// and `missing` of its own type; the struct has no other fields, no
/// invariant beyond its fields' own, and is not packed.
pub unsafe fn read_fields(r: &mut Reader<'_>, fields: &[Field], out: *mut u8) -> Result<()> {
    // One bit per field.
    assert!(fields.len() <= 64);
    let mut written = 0u64;
    let result = r.object(&mut |r, key| {
        let Some(index) = fields.iter().position(|f| f.name == key) else {
            return r.skip();
        };
        let field = &fields[index];
        if written & 1 << index != 0 {
            return Err(Error::new(crate::concat(&[
                "duplicate field `",
                field.name,
                "`",
            ])));
        }
        // SAFETY: the field's place in `out`, not yet written.
        unsafe { (field.read)(r, out.add(field.offset))? };
        written |= 1 << index;
        Ok(())
    });
    let result = result.and_then(|()| {
        for (index, field) in fields.iter().enumerate() {
            // SAFETY: as above.
            if written & 1 << index == 0 && !unsafe { (field.missing)(out.add(field.offset)) } {
                return Err(Error::new(crate::concat(&[
                    "missing field `",
                    field.name,
                    "`",
                ])));
            }
            written |= 1 << index;
        }
        Ok(())
    });
    if result.is_err() {
        for (index, field) in fields.iter().enumerate() {
            if written & 1 << index != 0 {
                // SAFETY: written above, and given up now.
                unsafe { (field.drop)(out.add(field.offset)) };
            }
        }
    }
    result
}

/// Reads a string that must be one of `names` (a unit enum variant): its
/// position.
pub fn read_variant(r: &mut Reader<'_>, names: &[&str]) -> Result<usize> {
    let name = r.string()?;
    names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| Error::new(crate::concat(&["unknown variant `", &name, "`"])))
}

// SAFETY: the default `read_to`.
unsafe impl Read for String {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.string().map(Cow::into_owned)
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.boolean()
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for u64 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.unsigned()
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for u32 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.unsigned()?;
        u32::try_from(n).map_err(|_| r.error("integer out of range"))
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for i32 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.int32()
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for f64 {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.float()
    }
}

// SAFETY: the default `read_to`.
unsafe impl<T: Read> Read for Option<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        if r.null()? {
            Ok(None)
        } else {
            T::read(r).map(Some)
        }
    }

    fn missing() -> Option<Self> {
        Some(None)
    }
}

// SAFETY: the default `read_to`.
unsafe impl<T: Read> Read for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let mut out = Vec::<T>::new();
        r.array(&mut |r| {
            out.reserve(1);
            let len = out.len();
            // SAFETY: the spare place after the last element, written by
            // `read_to` (whole when it succeeds) before it is counted.
            unsafe {
                T::read_to(r, out.as_mut_ptr().add(len).cast())?;
                out.set_len(len + 1);
            }
            Ok(())
        })?;
        Ok(out)
    }
}
