//! The plain objects JavaScript passes in (the config, a model filter), read
//! field by field: `undefined` and `null` mean "not set" (in a model
//! filter only `undefined`: see [`Fields::strict`]), a value of the
//! wrong type is an error naming its field; [`Fields::unknown`] names a
//! property no read asked for (warned of in a config, refused in a filter).

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// A field whose value has the wrong type or is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: &'static str,
    pub(crate) message: &'static str,
}

/// What an object does not have, it has as "not set"; a value that is not an
/// object at all is refused.
#[derive(Debug)]
pub(crate) struct Fields(JsValue, std::cell::RefCell<Vec<&'static str>>, bool);

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// The first own property of `object` not among `known` (names joined
    /// by commas).
    #[wasm_bindgen(js_name = unknownOption)]
    fn unknown_option(object: &JsValue, known: &str) -> Option<String>;
}

type Field<T> = Result<Option<T>, FieldError>;

impl Fields {
    pub(crate) fn of(value: JsValue) -> Result<Self, FieldError> {
        Self::read(value, false)
    }

    /// As [`Fields::of`], with `null` a value of the wrong type, not "not
    /// set": a model filter's `{ providerId: selectedOrNull }` would
    /// otherwise match every model.
    pub(crate) fn strict(value: JsValue) -> Result<Self, FieldError> {
        Self::read(value, true)
    }

    fn read(value: JsValue, strict: bool) -> Result<Self, FieldError> {
        // A list is an object too, but no config or filter.
        if value.is_object() && !js_sys::Array::is_array(&value) {
            Ok(Self(value, Default::default(), strict))
        } else {
            Err(FieldError {
                field: "the value",
                message: "must be a plain object",
            })
        }
    }

    fn get<T>(
        &self,
        field: &'static str,
        message: &'static str,
        read: impl FnOnce(&JsValue) -> Option<T>,
    ) -> Field<T> {
        match self.value(field) {
            None => Ok(None),
            Some(value) => read(&value).map(Some).ok_or(FieldError { field, message }),
        }
    }

    /// The field's value, unless `undefined` or (unless strict) `null`. Not
    /// inlined: one copy for every field read.
    #[inline(never)]
    fn value(&self, field: &'static str) -> Option<JsValue> {
        self.1.borrow_mut().push(field);
        let value = Reflect::get(&self.0, &JsValue::from_str(field)).unwrap_or(JsValue::UNDEFINED);
        (!value.is_undefined() && (self.2 || !value.is_null())).then_some(value)
    }

    /// The first property of the object that no read asked for, nor is
    /// among `also` (names joined by commas, read elsewhere): a misspelt
    /// option or filter field, otherwise ignored without a word.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn unknown(&self, also: &str) -> Option<String> {
        // Joined by hand: `[&str]::join` brings a specialised copy loop of
        // its own into the wasm.
        let mut known = String::from(also);
        for name in self.1.borrow().iter() {
            // No empty name among them (`""` would then be known).
            if !known.is_empty() {
                known.push(',');
            }
            known.push_str(name);
        }
        unknown_option(&self.0, &known)
    }

    #[inline(never)]
    pub(crate) fn string(&self, field: &'static str) -> Field<String> {
        self.get(field, "must be a string", JsValue::as_string)
    }

    #[inline(never)]
    pub(crate) fn boolean(&self, field: &'static str) -> Field<bool> {
        self.get(field, "must be a boolean", JsValue::as_bool)
    }

    #[inline(never)]
    pub(crate) fn number(&self, field: &'static str) -> Field<f64> {
        self.get(field, "must be a number", JsValue::as_f64)
    }

    #[inline(never)]
    pub(crate) fn count(&self, field: &'static str) -> Field<u32> {
        self.get(field, "must be a whole number, 0 or more", |v| {
            v.as_f64()
                .filter(|n| n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(n))
                .map(|n| n as u32)
        })
    }

    /// A catalog state, as `GET /state` gives it, whose checksum matches its
    /// content.
    pub(crate) fn state(&self, field: &'static str) -> Field<provider_sync_protocol::SyncState> {
        self.get(field, "must be GET /state's answer, unchanged", |value| {
            let state: provider_sync_protocol::SyncState =
                crate::transport::from_js(value, "bootstrap").ok()?;
            let sum = provider_sync_protocol::state_checksum(&state).to_hex();
            (sum == state.metadata.checksum).then_some(state)
        })
    }

    /// One of `names`, as its position (not generic: one copy in the wasm
    /// for every caller).
    pub(crate) fn choice(
        &self,
        field: &'static str,
        message: &'static str,
        names: &[&str],
    ) -> Field<usize> {
        self.get(field, message, |v| {
            let name = v.as_string()?;
            names.iter().position(|n| *n == name)
        })
    }
}
