//! The table-driven writer: the wire types straight to JSON text, with one
//! encoder for every struct ([`write_struct`], from the table
//! `#[derive(Write)]` makes of a struct's fields). The text is what serde's
//! derived writers give through [`crate::to_string`], but for numbers with
//! a fraction, written as `JSON.stringify` writes them (`1.0` is `1`).

use std::rc::Rc;

use crate::json::Writer;

/// A type written as JSON text by this crate's writer.
pub trait Write {
    /// Writes the value.
    fn write(&self, out: &mut Writer);
}

/// `value` as JSON text.
pub fn write<T: Write + ?Sized>(value: &T) -> String {
    let mut out = Writer::default();
    value.write(&mut out);
    out.finish()
}

/// One field of a struct, as `#[derive(Write)]` describes it.
pub struct Member {
    /// The member's name in the JSON object.
    pub name: &'static str,
    /// The field's offset in the struct.
    pub offset: usize,
    /// Writes the field's type from the place given.
    pub write: unsafe fn(*const u8, &mut Writer),
    /// Whether to leave the member out (`skip_serializing_if`).
    pub skip: Option<unsafe fn(*const u8) -> bool>,
}

/// Writes the `T` at `at`.
///
/// # Safety
/// `at` holds a `T`.
pub unsafe fn write_at<T: Write>(at: *const u8, out: &mut Writer) {
    // SAFETY: the caller's promise.
    unsafe { (*at.cast::<T>()).write(out) }
}

/// Writes the struct at `at` as an object, member by member as `members`
/// describes them.
///
/// # Safety
/// `at` holds a struct whose fields `members` describe, each with its own
/// offset and the writer of its own type.
pub unsafe fn write_struct(out: &mut Writer, members: &[Member], at: *const u8) {
    out.raw("{");
    let mut first = true;
    for member in members {
        // SAFETY: the field's place in the struct, per the caller.
        let place = unsafe { at.add(member.offset) };
        if member.skip.is_some_and(|skip| unsafe { skip(place) }) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.raw(",");
        }
        out.string(member.name);
        out.raw(":");
        // SAFETY: as above.
        unsafe { (member.write)(place, out) };
    }
    out.raw("}");
}

impl Write for str {
    fn write(&self, out: &mut Writer) {
        out.string(self);
    }
}

impl Write for String {
    fn write(&self, out: &mut Writer) {
        out.string(self);
    }
}

impl Write for bool {
    fn write(&self, out: &mut Writer) {
        out.raw(if *self { "true" } else { "false" });
    }
}

impl Write for u64 {
    fn write(&self, out: &mut Writer) {
        out.unsigned(*self);
    }
}

impl Write for u32 {
    fn write(&self, out: &mut Writer) {
        out.unsigned((*self).into());
    }
}

impl Write for i64 {
    fn write(&self, out: &mut Writer) {
        out.signed(*self);
    }
}

impl Write for i32 {
    fn write(&self, out: &mut Writer) {
        out.signed((*self).into());
    }
}

impl Write for f64 {
    fn write(&self, out: &mut Writer) {
        out.float(*self);
    }
}

impl<T: Write> Write for Option<T> {
    fn write(&self, out: &mut Writer) {
        match self {
            Some(value) => value.write(out),
            None => out.raw("null"),
        }
    }
}

impl<T: Write> Write for [T] {
    fn write(&self, out: &mut Writer) {
        out.raw("[");
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            item.write(out);
        }
        out.raw("]");
    }
}

impl<T: Write> Write for Vec<T> {
    fn write(&self, out: &mut Writer) {
        self.as_slice().write(out);
    }
}

impl<T: Write + ?Sized> Write for &T {
    fn write(&self, out: &mut Writer) {
        (**self).write(out);
    }
}

impl<T: Write + ?Sized> Write for Box<T> {
    fn write(&self, out: &mut Writer) {
        (**self).write(out);
    }
}

impl<T: Write + ?Sized> Write for Rc<T> {
    fn write(&self, out: &mut Writer) {
        (**self).write(out);
    }
}
