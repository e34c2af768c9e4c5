//! `#[derive(Read)]` against serde's derived reader on the same types and
//! text, and the table decoder's handling of what it has read when the text
//! turns out wrong (each value dropped once, none leaked).

use std::cell::Cell;

use provider_sync_wire::{self as wire, Read, Reader, Write, Writer};
use serde::{Deserialize, Serialize};

thread_local! {
    /// `Counted` values alive on this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

/// A string that counts the copies of itself alive.
#[derive(Debug, PartialEq, Deserialize, Serialize)]
#[serde(from = "String")]
struct Counted(String);

impl From<String> for Counted {
    fn from(text: String) -> Self {
        LIVE.with(|live| live.set(live.get() + 1));
        Self(text)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.with(|live| live.set(live.get() - 1));
    }
}

impl Default for Counted {
    fn default() -> Self {
        Self::from(String::new())
    }
}

impl Write for Counted {
    fn write(&self, out: &mut Writer) {
        self.0.write(out);
    }
}

// SAFETY: the default `read_to`.
unsafe impl Read for Counted {
    fn read(r: &mut Reader<'_>) -> wire::Result<Self> {
        String::read(r).map(Self::from)
    }
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn seven() -> u32 {
    7
}

#[derive(Debug, PartialEq, Deserialize, Serialize, Read, Write)]
#[serde(rename_all = "snake_case")]
enum Kind {
    FullSync,
    Other,
    #[serde(rename = "third")]
    Renamed,
}

#[derive(Debug, PartialEq, Deserialize, Serialize, Read, Write)]
struct Inner {
    name: Counted,
    tags: Vec<Counted>,
}

#[derive(Debug, PartialEq, Deserialize, Serialize, Read, Write)]
struct Outer {
    first: Counted,
    kind: Kind,
    #[serde(rename = "renamed")]
    field: i32,
    maybe: Option<Counted>,
    #[serde(default, skip_serializing_if = "is_false")]
    flag: bool,
    #[serde(default = "seven")]
    count: u32,
    price: f64,
    big: u64,
    inner: Inner,
    inners: Vec<Inner>,
    #[serde(default)]
    defaulted: Counted,
    last: Counted,
}

const WHOLE: &str = r#"{
    "first": "a", "kind": "third", "renamed": -4, "maybe": "m", "flag": true,
    "count": 3, "price": 2.5, "big": 18446744073709551615,
    "inner": {"name": "n", "tags": ["t1", "t2"], "unknown": [1, {"x": null}]},
    "inners": [{"tags": [], "name": "i"}], "last": "z"
}"#;

/// Ours and serde's on the same text: the same value, or both an error.
fn both(text: &str) -> Result<Outer, wire::Error> {
    let ours = wire::read::<Outer>(text);
    let theirs = serde_json::from_str::<Outer>(text);
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{text}"),
        (Err(_), Err(_)) => {}
        _ => panic!("ours {ours:?}, serde's {theirs:?}: {text}"),
    }
    ours
}

#[test]
fn reads_what_serde_reads() {
    let read = both(WHOLE).unwrap();
    assert_eq!(read.kind, Kind::Renamed);
    assert_eq!((read.field, read.count, read.big), (-4, 3, u64::MAX));
    assert_eq!(read.inner.tags.len(), 2);
    drop(read);
    assert_eq!(live(), 0);

    // Missing: an Option is None, a default is its default, a default path
    // its function's value.
    let sparse = r#"{"first": "a", "kind": "full_sync", "renamed": 1, "price": 1,
        "big": 0, "inner": {"name": "n", "tags": []}, "inners": [], "last": "z"}"#;
    let read = both(sparse).unwrap();
    assert_eq!((&read.maybe, read.flag, read.count), (&None, false, 7));
    assert_eq!(read.kind, Kind::FullSync);
    // `first`, `inner.name`, `defaulted` (its default) and `last`.
    assert_eq!(live(), 4);
    drop(read);
    assert_eq!(live(), 0);
}

#[test]
fn wrong_text_is_an_error_that_leaks_and_double_drops_nothing() {
    let cases = [
        // A required field missing, at the end (after `defaulted` was given
        // its default, which is dropped) and in a nested struct.
        (
            WHOLE.replace(r#", "last": "z""#, ""),
            "missing field `last`",
        ),
        (
            WHOLE.replace(r#""name": "n", "#, ""),
            "missing field `name`",
        ),
        // A field read, then a required one missing.
        (
            WHOLE
                .replace(r#", "last": "z""#, "")
                .replace(r#""first""#, r#""defaulted": "d", "first""#),
            "missing field `last`",
        ),
        // A field twice: the first value is dropped, once.
        (
            WHOLE.replace(r#""last": "z""#, r#""last": "z", "first": "b""#),
            "duplicate field `first`",
        ),
        // A bad value after other fields were read, deep inside.
        (WHOLE.replace(r#""t2""#, "2"), "expected a string"),
        // In the second element of a list of structs, after its first
        // field: the first element and that field are dropped.
        (
            WHOLE.replace(
                r#"[{"tags": [], "name": "i"}]"#,
                r#"[{"tags": ["a"], "name": "i"}, {"tags": ["b"], "name": 5}]"#,
            ),
            "expected a string",
        ),
        (WHOLE.replace("third", "fourth"), "unknown variant `fourth`"),
        (WHOLE.replace("-4", "2147483648"), "integer out of range"),
        (WHOLE.replace("2.5", "\"2.5\""), "expected a number"),
        (
            WHOLE.replace("\"count\": 3", "\"count\": -3"),
            "expected an unsigned integer",
        ),
        (WHOLE.replace("\"m\"", "[\"m\"]"), "expected a string"),
        // Not an object.
        ("[1]".to_owned(), "expected an object"),
        // Syntax, after everything was read.
        (WHOLE.replace("\"z\"\n}", "\"z\",\n}"), "expected a string"),
        (format!("{WHOLE} x"), "trailing characters"),
    ];
    for (text, expected) in cases {
        let error = both(&text).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}: {text}");
        assert_eq!(live(), 0, "{text}");
    }
}

#[test]
fn a_struct_at_the_nesting_limit_reads_and_past_it_does_not() {
    #[derive(Debug, Read)]
    struct Nest {
        next: Option<Box<Nest>>,
    }
    // SAFETY: the default `read_to`.
    unsafe impl Read for Box<Nest> {
        fn read(r: &mut Reader<'_>) -> wire::Result<Self> {
            Nest::read(r).map(Box::new)
        }
    }
    let nested = |depth: usize| "{\"next\":".repeat(depth) + "null" + &"}".repeat(depth);
    wire::read::<Nest>(&nested(128)).unwrap();
    let error = wire::read::<Nest>(&nested(129)).unwrap_err();
    assert!(error.to_string().contains("nested too deeply"), "{error}");
}

#[derive(Debug, PartialEq, Serialize, Write)]
#[serde(rename_all = "camelCase")]
struct Camel {
    snake_case_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    left_out_when_none: Option<u64>,
    #[serde(rename = "type")]
    kind: Kind,
    list: Vec<Kind>,
}

/// Ours and serde's writers: the same text, floats aside (none here but
/// `price`, a whole or short number written alike by both).
#[test]
fn writes_what_serde_writes() {
    let mut read = wire::read::<Outer>(WHOLE).unwrap();
    read.price = 2.5;
    assert_eq!(wire::write(&read), serde_json::to_string(&read).unwrap());
    read.flag = false;
    let text = wire::write(&read);
    assert_eq!(text, serde_json::to_string(&read).unwrap());
    assert!(!text.contains("flag"), "{text}");
    for camel in [
        Camel {
            snake_case_name: Some("a\"b\n\u{1}é".into()),
            left_out_when_none: Some(u64::MAX),
            kind: Kind::FullSync,
            list: vec![Kind::Renamed, Kind::Other],
        },
        Camel {
            snake_case_name: None,
            left_out_when_none: None,
            kind: Kind::Renamed,
            list: vec![],
        },
    ] {
        assert_eq!(wire::write(&camel), serde_json::to_string(&camel).unwrap());
    }
    drop(read);
    assert_eq!(live(), 0);
}

/// How an event's `reason` is read in the SDK: a string, or null.
fn lenient(r: &mut Reader<'_>) -> wire::Result<Option<Counted>> {
    let text = r.raw()?;
    let name: Option<String> = wire::read(text)?;
    Ok(name.filter(|name| name != "unknown").map(Counted::from))
}

#[derive(Debug, Read)]
struct With {
    first: Counted,
    #[serde(default)]
    #[wire(with = "lenient")]
    lenient: Option<Counted>,
    last: Counted,
}

#[test]
fn a_field_read_with_a_function_of_its_own() {
    let read = wire::read::<With>(r#"{"first":"a","lenient":"b","last":"c"}"#).unwrap();
    assert_eq!(read.lenient.as_ref().map(|c| c.0.as_str()), Some("b"));
    drop(read);
    let read = wire::read::<With>(r#"{"first":"a","lenient":"unknown","last":"c"}"#).unwrap();
    assert_eq!(read.lenient, None);
    drop(read);
    let read = wire::read::<With>(r#"{"first":"a","last":"c"}"#).unwrap();
    assert_eq!(read.lenient, None);
    drop(read);
    for bad in [
        r#"{"first":"a","lenient":5,"last":"c"}"#,
        r#"{"first":"a","lenient":"b"}"#,
        r#"{"first":"a","lenient":"b","last":"c","lenient":"d"}"#,
    ] {
        wire::read::<With>(bad).unwrap_err();
        assert_eq!(live(), 0, "{bad}");
    }
    assert_eq!(live(), 0);
}
