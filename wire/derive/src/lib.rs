//! `#[derive(Read)]` and `#[derive(Write)]` for `provider-sync-wire`: a
//! struct is a table of its fields (name, offset, and the reader or writer
//! of each field's type, shared by every struct), read or written by one
//! decoder or encoder; a unit enum is its list of names. No code per field,
//! and none per struct beyond the table.
//!
//! They follow the same `#[serde(...)]` attributes as serde's derives, so a
//! type is described once: `rename_all` (`snake_case`, `lowercase`,
//! `camelCase`) on the container; `rename`, and for reading `default` and
//! `default = "path"`, for writing `skip_serializing_if = "path"`, on
//! fields. Any other attribute that changes how serde reads or writes the
//! type (`flatten`, `deserialize_with`, `serialize_with`, `tag`, …) is
//! refused at compile time rather than followed differently.
//! `#[wire(with = "path")]` on a field reads it with
//! `fn(&mut Reader) -> Result<T>`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Error, Fields, LitStr, Path, spanned::Spanned};

/// How names are written on the wire (serde's `rename_all`).
#[derive(Clone, Copy)]
enum Rename {
    None,
    SnakeCase,
    Lowercase,
    CamelCase,
}

impl Rename {
    /// A variant's name (`PascalCase` in Rust).
    fn variant(self, name: &str) -> String {
        match self {
            Self::None => name.to_owned(),
            Self::Lowercase => name.to_ascii_lowercase(),
            Self::CamelCase => {
                let mut chars = name.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_lowercase().to_string() + chars.as_str()
                })
            }
            Self::SnakeCase => {
                let mut out = String::new();
                for (i, c) in name.chars().enumerate() {
                    if c.is_ascii_uppercase() {
                        if i > 0 {
                            out.push('_');
                        }
                        out.push(c.to_ascii_lowercase());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// A field's name (`snake_case` in Rust).
    fn field(self, name: &str) -> String {
        match self {
            Self::None | Self::SnakeCase => name.to_owned(),
            Self::Lowercase => name.to_ascii_lowercase(),
            Self::CamelCase => {
                let mut out = String::new();
                let mut upper = false;
                for c in name.chars() {
                    if c == '_' {
                        upper = true;
                    } else if upper {
                        out.push(c.to_ascii_uppercase());
                        upper = false;
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// What a field's attributes say.
#[derive(Default)]
struct FieldAttrs {
    rename: Option<String>,
    /// `default` (`None` inside: `Default::default`) or `default = "path"`.
    default: Option<Option<Path>>,
    /// `skip_serializing_if = "path"`.
    skip_if: Option<Path>,
    /// `#[wire(with = "path")]`: how to read it.
    with: Option<Path>,
}

/// Which derive is at work: what it may ignore, and its name in errors.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Read,
    Write,
}

impl Side {
    fn error(self, span: &impl Spanned, what: &str) -> Error {
        let name = match self {
            Self::Read => "wire::Read",
            Self::Write => "wire::Write",
        };
        Error::new(span.span(), format!("{name}: {what}"))
    }
}

fn container_rename(input: &DeriveInput, side: Side) -> Result<Rename, Error> {
    let mut rename = Rename::None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                let value: LitStr = meta.value()?.parse()?;
                rename = match value.value().as_str() {
                    "snake_case" => Rename::SnakeCase,
                    "lowercase" => Rename::Lowercase,
                    "camelCase" => Rename::CamelCase,
                    _ => return Err(side.error(&value, "this rename_all is not supported")),
                };
                Ok(())
            } else {
                Err(side.error(&meta.path, "this serde attribute is not supported"))
            }
        })?;
    }
    Ok(rename)
}

fn field_attrs(attrs: &[syn::Attribute], side: Side) -> Result<FieldAttrs, Error> {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("serde") {
            attr.parse_nested_meta(|meta| {
                let value: Option<LitStr> = if meta.input.peek(syn::Token![=]) {
                    Some(meta.value()?.parse()?)
                } else {
                    None
                };
                let path = value.as_ref().map(LitStr::parse::<Path>).transpose();
                if meta.path.is_ident("rename") {
                    let name =
                        value.ok_or_else(|| side.error(&meta.path, "rename needs a name"))?;
                    out.rename = Some(name.value());
                } else if meta.path.is_ident("default") {
                    out.default = Some(path?);
                } else if meta.path.is_ident("skip_serializing_if") {
                    out.skip_if = Some(path?.ok_or_else(|| side.error(&meta.path, "a path"))?);
                } else if side == Side::Write && meta.path.is_ident("deserialize_with") {
                    // Reading only.
                } else {
                    return Err(side.error(&meta.path, "this serde attribute is not supported"));
                }
                Ok(())
            })?;
        } else if attr.path().is_ident("wire") {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("with") {
                    out.with = Some(meta.value()?.parse::<LitStr>()?.parse()?);
                    Ok(())
                } else {
                    Err(side.error(&meta.path, "expected `with = \"path\"`"))
                }
            })?;
        }
    }
    Ok(out)
}

/// A type's fields (a struct) or variants (a unit enum), checked.
enum Shape<'a> {
    Struct(Vec<(&'a syn::Field, FieldAttrs, String)>),
    Enum(Vec<(&'a syn::Ident, String)>),
}

fn shape(input: &DeriveInput, side: Side) -> Result<Shape<'_>, Error> {
    if !input.generics.params.is_empty() {
        return Err(side.error(&input.generics, "generic types are not supported"));
    }
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let mut packed = false;
        attr.parse_nested_meta(|meta| {
            packed |= meta.path.is_ident("packed");
            if meta.input.peek(syn::token::Paren) {
                let _content;
                syn::parenthesized!(_content in meta.input);
            }
            Ok(())
        })?;
        if packed {
            // Fields are read and written in place, which needs them aligned.
            return Err(side.error(attr, "packed structs are not supported"));
        }
    }
    let rename = container_rename(input, side)?;
    match &input.data {
        Data::Struct(data) => {
            let Fields::Named(fields) = &data.fields else {
                return Err(side.error(&input.ident, "only structs with named fields"));
            };
            if fields.named.len() > 64 {
                return Err(side.error(&input.ident, "at most 64 fields"));
            }
            let mut out = Vec::new();
            for field in &fields.named {
                let attrs = field_attrs(&field.attrs, side)?;
                let ident = field.ident.as_ref().expect("named field");
                let name = attrs
                    .rename
                    .clone()
                    .unwrap_or_else(|| rename.field(&ident.unraw().to_string()));
                out.push((field, attrs, name));
            }
            Ok(Shape::Struct(out))
        }
        Data::Enum(data) => {
            let mut out = Vec::new();
            for variant in &data.variants {
                if !matches!(variant.fields, Fields::Unit) {
                    return Err(side.error(variant, "only enums of unit variants"));
                }
                let mut name = rename.variant(&variant.ident.unraw().to_string());
                for attr in variant.attrs.iter().filter(|a| a.path().is_ident("serde")) {
                    attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("rename") {
                            name = meta.value()?.parse::<LitStr>()?.value();
                            Ok(())
                        } else {
                            Err(side.error(&meta.path, "this serde attribute is not supported"))
                        }
                    })?;
                }
                out.push((&variant.ident, name));
            }
            if out.is_empty() {
                return Err(side.error(&input.ident, "an enum with no variants"));
            }
            Ok(Shape::Enum(out))
        }
        Data::Union(_) => Err(Error::new(Span::call_site(), "unions are not supported")),
    }
}

/// Derives `provider_sync_wire::Read`.
#[proc_macro_derive(Read, attributes(serde, wire))]
pub fn derive_read(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand_read(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Derives `provider_sync_wire::Write`.
#[proc_macro_derive(Write, attributes(serde, wire))]
pub fn derive_write(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand_write(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

fn expand_read(input: &DeriveInput) -> Result<Tokens, Error> {
    let name = &input.ident;
    let body = match shape(input, Side::Read)? {
        Shape::Struct(fields) => {
            let mut entries = Vec::new();
            for (field, attrs, wire_name) in fields {
                let ident = field.ident.as_ref().expect("named field");
                let ty = &field.ty;
                let read = match &attrs.with {
                    None => quote!(<#ty as w::Read>::read_to),
                    Some(path) => quote!({
                        // The path is called from a safe function: an
                        // `unsafe fn` there does not compile.
                        fn value(r: &mut w::Reader<'_>) -> w::Result<#ty> {
                            #path(r)
                        }
                        unsafe fn read(r: &mut w::Reader<'_>, at: *mut u8) -> w::Result<()> {
                            let value = value(r)?;
                            // SAFETY: as `Read::read_to`: `at` is this
                            // field's place, unwritten.
                            unsafe { at.cast::<#ty>().write(value) };
                            Ok(())
                        }
                        read
                    }),
                };
                let missing = match &attrs.default {
                    None => quote!(w::missing_at::<#ty>),
                    Some(None) => quote!(w::default_at::<#ty>),
                    Some(Some(path)) => quote!({
                        fn value() -> #ty {
                            #path()
                        }
                        unsafe fn missing(at: *mut u8) -> bool {
                            let value = value();
                            // SAFETY: as `default_at`.
                            unsafe { at.cast::<#ty>().write(value) };
                            true
                        }
                        missing
                    }),
                };
                entries.push(quote! {
                    w::Field {
                        name: #wire_name,
                        offset: ::core::mem::offset_of!(#name, #ident),
                        read: #read,
                        drop: w::drop_at::<#ty>,
                        missing: #missing,
                    }
                });
            }
            (
                quote!(w::read_struct::<#name>(r)),
                Some(quote! {
                    unsafe fn read_to(
                        r: &mut ::provider_sync_wire::Reader<'_>,
                        at: *mut u8,
                    ) -> ::provider_sync_wire::Result<()> {
                        use ::provider_sync_wire::__private as w;
                        static FIELDS: &[w::Field] = &[#(#entries),*];
                        // SAFETY: the table names every field of this struct
                        // once, each with its offset and the readers of its
                        // own type; `at` is the caller's promise.
                        unsafe { w::read_fields(r, FIELDS, at) }
                    }
                }),
            )
        }
        Shape::Enum(variants) => {
            let count = variants.len();
            let names = variants.iter().map(|(_, n)| n);
            let arms = variants.iter().enumerate().map(|(i, (ident, _))| {
                if i + 1 == count {
                    quote!(_ => Self::#ident)
                } else {
                    let index = syn::Index::from(i);
                    quote!(#index => Self::#ident)
                }
            });
            (
                quote! {
                    Ok(match w::read_variant(r, &[#(#names),*])? {
                        #(#arms,)*
                    })
                },
                None,
            )
        }
    };
    let (body, read_to) = body;
    Ok(quote! {
        // SAFETY: a struct's `read_to` is `read_fields` on a table of every
        // field (which writes the whole struct, or drops what it wrote); an
        // enum keeps the default.
        unsafe impl ::provider_sync_wire::Read for #name {
            fn read(r: &mut ::provider_sync_wire::Reader<'_>) -> ::provider_sync_wire::Result<Self> {
                use ::provider_sync_wire::__private as w;
                #body
            }
            #read_to
        }
    })
}

fn expand_write(input: &DeriveInput) -> Result<Tokens, Error> {
    let name = &input.ident;
    let body = match shape(input, Side::Write)? {
        Shape::Struct(fields) => {
            let mut entries = Vec::new();
            for (field, attrs, wire_name) in fields {
                let ident = field.ident.as_ref().expect("named field");
                let ty = &field.ty;
                let skip = match &attrs.skip_if {
                    None => quote!(None),
                    Some(path) => quote!({
                        unsafe fn skip(at: *const u8) -> bool {
                            // SAFETY: as `write_at`.
                            #path(unsafe { &*at.cast::<#ty>() })
                        }
                        Some(skip)
                    }),
                };
                entries.push(quote! {
                    w::Member {
                        name: #wire_name,
                        offset: ::core::mem::offset_of!(#name, #ident),
                        write: w::write_at::<#ty>,
                        skip: #skip,
                    }
                });
            }
            quote! {
                static MEMBERS: &[w::Member] = &[#(#entries),*];
                // SAFETY: the table names fields of this struct, each with
                // its offset and the writer of its own type.
                unsafe { w::write_struct(out, MEMBERS, (self as *const Self).cast()) }
            }
        }
        Shape::Enum(variants) => {
            let arms = variants.iter().map(|(ident, n)| quote!(Self::#ident => #n));
            quote! {
                out.string(match self {
                    #(#arms,)*
                })
            }
        }
    };
    Ok(quote! {
        impl ::provider_sync_wire::Write for #name {
            fn write(&self, out: &mut ::provider_sync_wire::Writer) {
                use ::provider_sync_wire::__private as w;
                #body
            }
        }
    })
}
