//! The object model: what the lexer reads and the writer serialises. A dictionary keeps its keys in the order
//! they were read and a real keeps its token, so an object read and written back is the same bytes.

/// An object number and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ref {
    pub(super) num: u32,
    pub(super) gen: u16,
}

/// A dictionary in the order its keys were read (names without the slash, `#xx` decoded).
pub(crate) type Dict = Vec<(Vec<u8>, Obj)>;

/// A PDF object as read. Reals keep their token, so an object the update rewrites keeps its values exactly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(String),
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(Ref),
}

impl Obj {
    /// A name object from its text (without the slash).
    pub(crate) fn name(n: &str) -> Obj {
        Obj::Name(n.as_bytes().to_vec())
    }

    /// A number as a finite `f64`; anything else (or an overflowing real) is `None`.
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Obj::Int(i) => Some(*i as f64),
            Obj::Real(r) => r.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        }
    }
}

/// A dictionary entry; a null value counts as absent (ISO 32000 §7.3.9).
pub(crate) fn get<'d>(dict: &'d Dict, key: &[u8]) -> Option<&'d Obj> {
    dict.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| **v != Obj::Null)
}

/// Sets `key`, dropping any earlier entries under it, and puts it last.
pub(crate) fn set(dict: &mut Dict, key: &[u8], value: Obj) {
    dict.retain(|(k, _)| k != key);
    dict.push((key.to_vec(), value));
}

/// PDF white space (ISO 32000 §7.2.3).
pub(super) fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

/// PDF delimiters: they end a token.
fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

/// Neither white space nor a delimiter: a byte of a name, number or keyword.
pub(super) fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delimiter(b)
}
