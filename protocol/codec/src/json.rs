//! JSON rendering of messages (feature `json`), as the `strata decode` command prints them:
//! integers as numbers (a U64 above 2^53 as a decimal string, so that no JSON reader loses
//! precision), byte strings and U256 as lowercase hex in wire order, STR0_255 as strings,
//! sequences as arrays, OPTION as `null` or its value.

use crate::wire::{LenBytes, PubKey, Seq, Signature, Str0_255, B0_32, U24, U256};
use serde_json::Value;

/// A value that renders as JSON.
pub trait ToJson {
    /// The JSON form.
    fn to_json(&self) -> Value;
}

macro_rules! num_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
num_json!(u8, u16, u32, bool);

impl ToJson for u64 {
    fn to_json(&self) -> Value {
        if *self <= (1u64 << 53) {
            Value::from(*self)
        } else {
            Value::String(self.to_string())
        }
    }
}

impl ToJson for f32 {
    /// Finite values as numbers; NaN and infinities (which JSON cannot hold) as strings.
    fn to_json(&self) -> Value {
        serde_json::Number::from_f64(f64::from(*self))
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(self.to_string()))
    }
}

impl ToJson for U24 {
    fn to_json(&self) -> Value {
        Value::from(self.get())
    }
}

fn hex(b: &[u8]) -> Value {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    Value::String(s)
}

impl ToJson for U256 {
    fn to_json(&self) -> Value {
        hex(&self.0)
    }
}
impl ToJson for PubKey {
    fn to_json(&self) -> Value {
        hex(&self.0)
    }
}
impl ToJson for Signature {
    fn to_json(&self) -> Value {
        hex(&self.0)
    }
}
impl ToJson for B0_32 {
    fn to_json(&self) -> Value {
        hex(self.as_slice())
    }
}
impl<const P: usize, const M: usize> ToJson for LenBytes<P, M> {
    fn to_json(&self) -> Value {
        hex(self.as_slice())
    }
}
impl ToJson for Str0_255 {
    fn to_json(&self) -> Value {
        Value::String(self.as_str().to_owned())
    }
}
impl<T: ToJson, const P: usize, const M: usize> ToJson for Seq<T, P, M> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}
impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_u64_is_a_string() {
        assert_eq!((1u64 << 53).to_json(), Value::from(1u64 << 53));
        assert_eq!(
            ((1u64 << 53) + 1).to_json(),
            Value::String("9007199254740993".into())
        );
    }
}
