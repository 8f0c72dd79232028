//! Objects to bytes, as the new revision writes them: numbers and reals as their tokens, strings of printable
//! ASCII as literals and others in hex, names with `#xx` escapes.

use super::object::is_regular;
use super::{set, Obj};

/// Serialises an object (strings of printable ASCII as literals, others in hex; names with `#xx` escapes).
pub(crate) fn serialize(obj: &Obj) -> Vec<u8> {
    let mut out = Vec::new();
    write_obj(&mut out, obj);
    out
}

/// Appends `obj` serialised to `out`.
fn write_obj(out: &mut Vec<u8>, obj: &Obj) {
    match obj {
        Obj::Null => out.extend_from_slice(b"null"),
        Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Obj::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Obj::Real(r) => out.extend_from_slice(r.as_bytes()),
        Obj::Str(s) if s.iter().all(|b| (0x20..0x7f).contains(b)) => {
            out.push(b'(');
            for b in s {
                if matches!(b, b'(' | b')' | b'\\') {
                    out.push(b'\\');
                }
                out.push(*b);
            }
            out.push(b')');
        }
        Obj::Str(s) => {
            out.push(b'<');
            out.extend_from_slice(hex::encode(s).as_bytes());
            out.push(b'>');
        }
        Obj::Name(n) => {
            out.push(b'/');
            for b in n {
                if is_regular(*b) && *b != b'#' && (0x21..0x7f).contains(b) {
                    out.push(*b);
                } else {
                    out.extend_from_slice(format!("#{b:02X}").as_bytes());
                }
            }
        }
        Obj::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_obj(out, item);
            }
            out.push(b']');
        }
        Obj::Dict(dict) => {
            out.extend_from_slice(b"<<");
            for (k, v) in dict {
                out.push(b' ');
                write_obj(out, &Obj::Name(k.clone()));
                out.push(b' ');
                write_obj(out, v);
            }
            out.extend_from_slice(b" >>");
        }
        Obj::Ref(r) => out.extend_from_slice(format!("{} {} R", r.num, r.gen).as_bytes()),
    }
}

/// A stream object's body: `dict` with `/Length`, then the data, uncompressed.
pub(crate) fn stream_object(dict: &[(Vec<u8>, Obj)], data: &[u8]) -> Vec<u8> {
    let mut dict = dict.to_vec();
    set(&mut dict, b"Length", Obj::Int(data.len() as i64));
    let mut out = serialize(&Obj::Dict(dict));
    out.extend_from_slice(b"\nstream\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}
